# The coordinator as a container: build once with the dev tools, run plain JavaScript on the production
# dependencies only (no tsx at run time, no embedded PostgreSQL: DATABASE_URL is required).
#   docker build -t coordinator .
#   docker run -e DATABASE_URL=postgres://… -e ADMIN_KEY=… -p 8080:8080 -p 50051:50051 coordinator
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --omit=optional
COPY tsconfig.json tsconfig.build.json ./
COPY gen gen
COPY src src
COPY bench bench
COPY test/support test/support
RUN npm run build

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 HTTP_PORT=8080 GRPC_PORT=50051
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --omit=dev --omit=optional && npm cache clean --force
COPY --from=build /app/dist dist
USER node
EXPOSE 8080 50051
# SIGTERM drains (SHUTDOWN_GRACE_MS, 20 s) then closes (up to ~15 s more): stop timeouts must allow 35 s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/cli/entry.js", "serve"]
