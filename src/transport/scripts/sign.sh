# shellcheck shell=sh
# trustmesh: sign a node's public key with the user CA, on the manager,
# and print the certificate.
#
# Run as `sh -c SCRIPT trustmesh CA ID PRINCIPALS VALIDITY SERIAL KEY AGENT`
# (scripts::command_line), in the account's home, with umask 077.
#
# Arguments: $1 CA         the CA's private key, relative to the home or
#                          absolute (it is read by ssh-keygen only); with
#                          AGENT, the CA's public key
#            $2 ID         the certificate's key id
#            $3 PRINCIPALS comma-separated
#            $4 VALIDITY   `ssh-keygen -V` (`-5m:+604800`)
#            $5 SERIAL     a number
#            $6 KEY        the public key line to sign
#            $7 AGENT      empty (or absent): CA is a key file; else the
#                          socket of the ssh-agent that holds the CA and
#                          signs (`ssh-keygen -U`; no private key is read)
# The key is copied into a private temporary folder (mktemp -d, 0700),
# signed there, and the folder removed; nothing else is written.
# Output:    `TM-PUB-BEGIN`, the certificate line, `TM-PUB-END` on success;
#            `TM-ERR REASON` and exit 3 (home or temporary folder), 4 (no
#            CA) or 5 (ssh-keygen failed). A failed tool's standard error
#            ends REASON.
set -u
oneline() { printf '%s' "$1" | tr '\n' ' '; }
umask 077
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
[ -f "$1" ] || { echo "TM-ERR the user CA $1 does not exist"; exit 4; }
t=$(mktemp -d 2>&1) || { echo "TM-ERR cannot make a temporary folder: $(oneline "$t")"; exit 3; }
trap 'rm -rf "$t"' EXIT
printf '%s\n' "$6" > "$t/key.pub" || { echo "TM-ERR cannot write in $t"; exit 3; }
u=
if [ -n "${7:-}" ]; then
  SSH_AUTH_SOCK=$7; export SSH_AUTH_SOCK; u=-U
fi
e=$(ssh-keygen -q -s "$1" ${u:+"$u"} -I "$2" -n "$3" -V "$4" -z "$5" "$t/key.pub" </dev/null 2>&1 >/dev/null) || { echo "TM-ERR ssh-keygen failed: $(oneline "$e")"; exit 5; }
echo TM-PUB-BEGIN
cat "$t/key-cert.pub"
echo TM-PUB-END
