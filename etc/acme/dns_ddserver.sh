#!/usr/bin/env sh
# acme.sh DNS API hook for ddserver: copy to ~/.acme.sh/dnsapi/dns_ddserver.sh, then
#
#   export DDSERVER_UPDATE_URL=https://update.example.org DDSERVER_SECRET=<the host's update secret>
#   acme.sh --issue --dns dns_ddserver -d home.dyn.example.org -d '*.home.dyn.example.org'
#
# DDSERVER_LOGIN defaults to the host name; set it to your user name to use a token (the "set TXT records" scope is enough).
# acme.sh remembers the settings in its account configuration after the first run.

dns_ddserver_add() {
    _ddserver_call set "$1" "$2"
}

dns_ddserver_rm() {
    _ddserver_call delete "$1" "$2"
}

_ddserver_call() {
    action=$1
    host=${2#_acme-challenge.}
    value=$3
    if command -v _readaccountconf_mutable >/dev/null 2>&1; then
        DDSERVER_UPDATE_URL=${DDSERVER_UPDATE_URL:-$(_readaccountconf_mutable DDSERVER_UPDATE_URL)}
        DDSERVER_SECRET=${DDSERVER_SECRET:-$(_readaccountconf_mutable DDSERVER_SECRET)}
        DDSERVER_LOGIN=${DDSERVER_LOGIN:-$(_readaccountconf_mutable DDSERVER_LOGIN)}
    fi
    if [ -z "${DDSERVER_UPDATE_URL:-}" ] || [ -z "${DDSERVER_SECRET:-}" ]; then
        echo "dns_ddserver: set DDSERVER_UPDATE_URL and DDSERVER_SECRET" >&2
        return 1
    fi
    if command -v _saveaccountconf_mutable >/dev/null 2>&1; then
        _saveaccountconf_mutable DDSERVER_UPDATE_URL "$DDSERVER_UPDATE_URL"
        _saveaccountconf_mutable DDSERVER_SECRET "$DDSERVER_SECRET"
        [ -n "${DDSERVER_LOGIN:-}" ] && _saveaccountconf_mutable DDSERVER_LOGIN "$DDSERVER_LOGIN"
    fi
    answer=$(curl -sS --get -u "${DDSERVER_LOGIN:-$host}:$DDSERVER_SECRET" \
        --data-urlencode "hostname=$host" \
        --data-urlencode "txt=$value" \
        --data-urlencode "action=$action" \
        "${DDSERVER_UPDATE_URL%/}/nic/acme")
    case $answer in
        good* | nochg*) return 0 ;;
        *) echo "dns_ddserver: ddserver answered '$answer' for $action at _acme-challenge.$host" >&2; return 1 ;;
    esac
}
