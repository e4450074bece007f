#!/usr/bin/env bash
# Install the Debian packages that tests, benchmarks and the local stack need; skip what is present.
# Debian is the reference; Ubuntu 24.04 (GitHub's runners) works too, with the differences below.
set -euo pipefail

# openssh-server: an sshd on loopback for the integration test of SSH through a ProxyCommand.
# docker-registry: a local registry (Distribution 2.8) for the integration test of registry delivery.
# prometheus-node-exporter / prometheus-alertmanager: host metrics and alert delivery in the
# monitoring tests (amtool checks the generated Alertmanager config).
# shellcheck: lints the API replicas' rendered startup script (tests/unit/stacks/test_replica_startup_script.py).
packages=(prometheus prometheus-node-exporter prometheus-alertmanager nginx-light pebble certbot wrk chromium chromium-driver docker.io debootstrap openssh-client openssh-server curl openssl rclone docker-registry shellcheck)

# OS_RELEASE_FILE: only for tests of this script.
distro="$(. "${OS_RELEASE_FILE:-/etc/os-release}" && echo "${ID:-debian}")"
if [[ $distro == ubuntu ]]; then
    # Ubuntu's chromium packages only install a snap (no snapd in CI containers, and snaps are
    # confined): Google Chrome and its chromedriver, which GitHub's runners ship, stand in for them
    # below. Docker comes from Docker's own packages there (docker.io would conflict with them).
    # nginx is nginx-light's superset, and debootstrap needs Debian's keyring to check a Debian
    # suite's signature on Ubuntu.
    packages=(prometheus prometheus-node-exporter prometheus-alertmanager nginx pebble certbot wrk debootstrap debian-archive-keyring openssh-client openssh-server curl openssl rclone docker-registry shellcheck)
    command -v docker >/dev/null || packages+=(docker.io)
fi

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
if ((${#missing[@]} > 0)); then
    echo "installing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The browser tests drive /usr/bin/chromium with /usr/bin/chromedriver (Debian's paths).
link_if_absent() {
    local target="$1" link="$2"
    if [[ ! -e $link && -x $target ]]; then
        echo "linking $link -> $target"
        $SUDO ln -s "$target" "$link"
    fi
}
if [[ $distro == ubuntu ]]; then
    link_if_absent "$(command -v google-chrome || true)" /usr/bin/chromium
    # GitHub's runners keep chromedriver's folder in CHROMEWEBDRIVER.
    link_if_absent "${CHROMEWEBDRIVER:-/nonexistent}/chromedriver" /usr/bin/chromedriver
fi
