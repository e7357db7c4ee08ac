# liveswap in a container: the master is the entrypoint (PID 1 of the
# container's own process, under the runtime's init); your app's code comes
# in a volume at /srv/app, with /srv/app/current pointing at the release
# (git-sync, or a deploy tool flipping the link), and --follow upgrades when
# the link moves. See docs/deploy.md.
#
#   docker build -t liveswap .
#   docker run -v /srv/app:/srv/app -p 8000:8000 -p 8080:8080 liveswap
#
# Build stage: pack liveswap as npm would publish it (npm pack builds first: prepack).
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci --ignore-scripts && npm pack --silent && mv liveswap-*.tgz /liveswap.tgz

# Runtime: a current Node LTS, slim, liveswap installed globally, non-root.
FROM node:24-bookworm-slim
COPY --from=build /liveswap.tgz /tmp/liveswap.tgz
RUN npm install --global --omit=dev --ignore-scripts /tmp/liveswap.tgz && rm /tmp/liveswap.tgz \
 && mkdir -p /run/liveswap /srv/app && chown node:node /run/liveswap /srv/app && chmod 0700 /run/liveswap
ENV NODE_ENV=production LIVESWAP_STATE_DIR=/run/liveswap
USER node
WORKDIR /srv/app
# The app's own port (yours may differ), and the health port for probes.
EXPOSE 8000 8080
ENTRYPOINT ["liveswap"]
# Control on a unix socket inside the container (docker exec … liveswap
# --status --socket /run/liveswap/control.sock); for control from outside,
# replace --socket with -a 0.0.0.0 -p 3000 --tls-cert/--tls-key/--tls-ca.
CMD ["-s", "/srv/app/current/server.js", "--follow", "--socket", "/run/liveswap/control.sock", "--health-port", "8080", "--health-address", "0.0.0.0"]
