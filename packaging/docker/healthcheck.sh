#!/bin/bash
# The container image's HEALTHCHECK: GET /healthz on the slotguard process of this container
# and expect "ok". Needs only bash (its /dev/tcp), which debian:bookworm-slim has.
# The port: $SLOTGUARD_HEALTH_PORT, else the exporter's 9478 or the agent's 9479 (whichever
# answers). The agent and exporter serve /healthz on their listen address; one bound to a
# specific non-loopback address needs SLOTGUARD_HEALTH_HOST.
set -u
host="${SLOTGUARD_HEALTH_HOST:-127.0.0.1}"
ports="${SLOTGUARD_HEALTH_PORT:-9478 9479}"
for port in $ports; do
  if { exec 3<>"/dev/tcp/${host}/${port}"; } 2>/dev/null; then
    printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
    reply="$(timeout 3 cat <&3)"
    exec 3<&- 3>&-
    status="${reply%%$'\r'*}"
    body="${reply##*$'\r\n\r\n'}"
    case "$status" in
      "HTTP/1."?" 200"*) [ "${body%%[[:space:]]*}" = "ok" ] && exit 0 ;;
    esac
  fi
done
echo "no /healthz answering ok on ${host} port(s) ${ports}" >&2
exit 1
