# shellcheck shell=sh
# trustmesh: give a file or folder to a user.
#
# Run as `sh -c SCRIPT trustmesh UID PATH` (scripts::command_line), in the
# account's home.
#
# Arguments: $1 UID   numeric user id
#            $2 PATH  relative to the home or absolute; never a symbolic
#                     link (chown would follow it)
# Output:    `TM-OK` on success; `TM-ERR REASON` and exit 3 (home, symbolic
#            link) or 5 (chown failed: it needs privileges the account
#            usually does not have; the reason gives the OS's words and
#            says what to run instead).
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
if [ -L "$2" ]; then echo "TM-ERR $2 is a symbolic link"; exit 3; fi
e=$(chown "$1" "$2" 2>&1) || { echo "TM-ERR cannot give $2 to uid $1: $(oneline "$e") (chown needs privileges this account usually does not have: run \`sudo chown $(id -un) ~/$2\` on the node)"; exit 5; }
echo TM-OK
