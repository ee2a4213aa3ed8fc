# shellcheck shell=sh
# trustmesh: chmod a file or folder.
#
# Run as `sh -c SCRIPT trustmesh MODE PATH` (scripts::command_line), in the
# account's home.
#
# Arguments: $1 MODE  octal mode
#            $2 PATH  relative to the home or absolute; never a symbolic
#                     link (chmod would follow it)
# Output:    `TM-OK` on success; `TM-ERR REASON` and exit 3 (home, symbolic
#            link) or 5 (chmod failed).
set -u
cd ~ || { echo "TM-ERR cannot enter the home folder"; exit 3; }
if [ -L "$2" ]; then echo "TM-ERR $2 is a symbolic link"; exit 3; fi
chmod "$1" "$2" || { echo "TM-ERR chmod failed"; exit 5; }
echo TM-OK
