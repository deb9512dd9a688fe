#!/bin/sh
# certbot --manual hook for ddserver: publishes (auth hook) or removes (cleanup hook) the DNS-01 challenge
# as a TXT record at _acme-challenge.<host>, authenticated with the host's update secret.
#
#   DDSERVER_UPDATE_URL=https://update.example.org DDSERVER_SECRET_FILE=/etc/letsencrypt/ddserver.secret \
#   certbot certonly --manual --preferred-challenges dns \
#       --manual-auth-hook /usr/share/ddserver/certbot-ddserver-hook.sh \
#       --manual-cleanup-hook /usr/share/ddserver/certbot-ddserver-hook.sh \
#       -d home.dyn.example.org -d '*.home.dyn.example.org'
#
# DDSERVER_LOGIN defaults to the certificate's host name (host FQDN + host secret); set it to your user
# name to use a token instead (one with the "set TXT records" scope is enough).
set -eu
: "${DDSERVER_UPDATE_URL:?set DDSERVER_UPDATE_URL, such as https://update.example.org}"
: "${CERTBOT_DOMAIN:?run this from certbot --manual-auth-hook / --manual-cleanup-hook}"
if [ -n "${DDSERVER_SECRET:-}" ]; then
    secret=$DDSERVER_SECRET
else
    secret=$(cat "${DDSERVER_SECRET_FILE:?set DDSERVER_SECRET or DDSERVER_SECRET_FILE}")
fi
login=${DDSERVER_LOGIN:-$CERTBOT_DOMAIN}
# certbot sets CERTBOT_AUTH_OUTPUT only when it runs the cleanup hook.
if [ -n "${CERTBOT_AUTH_OUTPUT+set}" ]; then action=delete; else action=set; fi
answer=$(curl -sS --get -u "$login:$secret" \
    --data-urlencode "hostname=$CERTBOT_DOMAIN" \
    --data-urlencode "txt=$CERTBOT_VALIDATION" \
    --data-urlencode "action=$action" \
    "${DDSERVER_UPDATE_URL%/}/nic/acme")
case $answer in
    good* | nochg*) ;;
    *) echo "ddserver answered '$answer' for $action of the challenge of $CERTBOT_DOMAIN" >&2; exit 1 ;;
esac
if [ "$action" = set ]; then
    # Give the nameservers a moment; ddserver's own recursor serves the record at once.
    sleep "${DDSERVER_WAIT_SECONDS:-5}"
fi
