#!/usr/bin/env bash
# Install the Debian packages Courtyard needs when they are missing.
#   scripts/system-deps.sh demo   -> mosquitto (the embedded broker)
#   scripts/system-deps.sh test   -> mosquitto, influxdb, victoria-metrics, chromium (real servers
#                                    and the browser of the tests), strace (the tests that count
#                                    the journal's syncs)
set -euo pipefail
profile=${1:-demo}
declare -A need=( [mosquitto]=/usr/sbin/mosquitto [mosquitto-clients]=/usr/bin/mosquitto_sub )
if [ "$profile" = test ] || [ "$profile" = bench ]; then
  need[influxdb]=/usr/bin/influxd
  need[victoria-metrics]=/usr/bin/victoria-metrics
  need[chromium]=/usr/bin/chromium  # the console's browser tests (tests/e2e)
  need[strace]=/usr/bin/strace  # syncs counted against commits (tests/integration/test_durable_ack.py)
fi
missing=()
for pkg in "${!need[@]}"; do
  [ -x "${need[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "courtyard: installing Debian packages: ${missing[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "courtyard: apt-get not found; install these packages yourself: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "courtyard: need root to install ${missing[*]} (run as root, or install them first)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
  [ -x "${need[$pkg]}" ] || { echo "courtyard: $pkg did not install ${need[$pkg]}" >&2; exit 1; }
done
