# shellcheck shell=sh
# trustmesh: append one authorized_keys line when its key is not there yet.
#
# Used once per node by `--ask-pass`, over a password login, to let the
# manager's key in. Run as `sh -c SCRIPT trustmesh LINE`
# (scripts::command_line), in the account's home, with umask 077.
#
# Arguments: $1 LINE  the whole authorized_keys line (`TYPE BASE64 COMMENT`)
# Creates ~/.ssh (0700) when missing; when ~/.ssh/authorized_keys already
# holds LINE's key (its second field) nothing is written. A file that does
# not end in a newline gets one before LINE. The file ends with mode 0600.
# Output:    `TM-OK` on success (also when the key was already there);
#            `TM-ERR REASON` and exit 3 (home, ~/.ssh, symbolic link) or 5
#            (cannot write).
set -u
umask 077
cd ~ || { echo "TM-ERR cannot enter the home folder"; exit 3; }
[ -d .ssh ] || mkdir -m 700 .ssh || { echo "TM-ERR cannot create ~/.ssh"; exit 3; }
f=.ssh/authorized_keys
if [ -L "$f" ]; then echo "TM-ERR $f is a symbolic link"; exit 3; fi
key=$(printf '%s\n' "$1" | awk '{print $2}')
if [ -f "$f" ] && grep -q -F -e "$key" "$f"; then echo TM-OK; exit 0; fi
if [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then printf '\n' >> "$f"; fi
printf '%s\n' "$1" >> "$f" || { echo "TM-ERR cannot write $f"; exit 5; }
chmod 600 "$f"
echo TM-OK
