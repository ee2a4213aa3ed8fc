# shellcheck shell=sh
# trustmesh: generate a key pair on the node and print its public half.
#
# Run as `sh -c SCRIPT trustmesh KEY TYPE BITS COMMENT`
# (scripts::command_line), in the account's home, with umask 077.
#
# Arguments: $1 KEY     the private key's path, relative to the home or
#                       absolute; its folder is created when missing
#            $2 TYPE    the key type for `ssh-keygen -t` (ed25519, rsa, ...)
#            $3 BITS    `ssh-keygen -b`, or empty for the type's default
#            $4 COMMENT the key's comment
# Refuses to overwrite anything: neither KEY nor KEY.pub may exist (not
# even as a dangling symbolic link).
# Output:    `TM-PUB-BEGIN`, the public key line, `TM-PUB-END` on success;
#            `TM-ERR REASON` and exit 3 (home or folder), 4 (KEY or KEY.pub
#            exists) or 5 (ssh-keygen failed). The private key is never
#            printed. A failed tool's standard error ends REASON.
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
umask 077
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
k=$1
case $k in
  */*) d=${k%/*}; d=${d:-/} ;;
  *) d=. ;;
esac
[ -d "$d" ] || e=$(mkdir -p "$d" 2>&1) || { echo "TM-ERR cannot create $d: $(oneline "$e")"; exit 3; }
if [ -e "$k" ] || [ -L "$k" ] || [ -e "$k.pub" ] || [ -L "$k.pub" ]; then
  echo "TM-ERR $k already exists: trustmesh never overwrites a key"; exit 4
fi
if [ -n "$3" ]; then
  e=$(ssh-keygen -q -t "$2" -b "$3" -a 100 -N '' -C "$4" -f "$k" </dev/null 2>&1 >/dev/null) || { echo "TM-ERR ssh-keygen failed: $(oneline "$e")"; exit 5; }
else
  e=$(ssh-keygen -q -t "$2" -a 100 -N '' -C "$4" -f "$k" </dev/null 2>&1 >/dev/null) || { echo "TM-ERR ssh-keygen failed: $(oneline "$e")"; exit 5; }
fi
echo TM-PUB-BEGIN
cat "$k.pub"
echo TM-PUB-END
