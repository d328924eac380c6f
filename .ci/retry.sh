# shellcheck shell=bash
# `td_retry CMD...`: runs a command that fetches from a registry (Debian's, PyPI, npm) up to
# three times, 10 then 20 s apart: a passing blip of the network must not fail CI. Sourced by
# .ci/run and .ci/postgres.sh.
td_retry() {
    local n
    for n in 1 2 3; do
        "$@" && return 0
        [ "$n" -lt 3 ] && { echo "retrying in $((n * 10)) s: $*" >&2; sleep $((n * 10)); }
    done
    return 1
}

# `td_apt_install [OPTION...] PACKAGE...`: apt's update and install, retried together
# (`apt-get update` exits 0 when a fetch fails; the install then fails on the lists it could
# not renew). As root, or through `$TD_SUDO` when set.
td_apt_install() {
    td_retry td_apt_install_once "$@"
}

td_apt_install_once() {
    ${TD_SUDO:-} env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        ${TD_SUDO:-} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
