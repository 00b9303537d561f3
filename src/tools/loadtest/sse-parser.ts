/** One server-sent event: the `event:` name (if any) and its `data:` lines joined with "\n". */
export interface SseEvent {
  event: string | null;
  data: string;
}

/**
 * An incremental server-sent-events parser (WHATWG "event stream interpretation", the parts OpenAI streams use):
 * feed decoded text in arbitrary pieces and get back the events completed so far. Lines may end in LF, CRLF or
 * CR; comment lines (":" prefix) and unknown fields are ignored; an event is dispatched at a blank line only when
 * it carried data. Written by hand so the load-test client depends on nothing but Node's fetch.
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event: string | null = null;
  /** True when the previous chunk ended in CR, so a leading LF in the next chunk belongs to that line end. */
  #pendingCr = false;

  /** Parses `text` and returns every event completed by it. */
  feed(text: string): SseEvent[] {
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    this.#buffer += text;
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.#buffer.length; i++) {
      const c = this.#buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      this.#line(this.#buffer.slice(start, i), out);
      if (c === "\r") {
        if (i + 1 < this.#buffer.length) {
          if (this.#buffer[i + 1] === "\n") i++;
        } else {
          this.#pendingCr = true;
        }
      }
      start = i + 1;
    }
    this.#buffer = this.#buffer.slice(start);
    return out;
  }

  /** Dispatches a final event that was not followed by a blank line (a server that closed abruptly). */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.#buffer !== "") this.#line(this.#buffer, out);
    this.#buffer = "";
    this.#line("", out);
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === "") {
      if (this.#data.length > 0) out.push({ event: this.#event, data: this.#data.join("\n") });
      this.#data = [];
      this.#event = null;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
  }
}
