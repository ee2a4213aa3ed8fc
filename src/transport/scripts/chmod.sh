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
#            link) or 5 (chmod failed); REASON ends with the failing
#            tool's standard error (the OS's reason).
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
if [ -L "$2" ]; then echo "TM-ERR $2 is a symbolic link"; exit 3; fi
e=$(chmod "$1" "$2" 2>&1) || { echo "TM-ERR cannot chmod $1 $2: $(oneline "$e")"; exit 5; }
echo TM-OK
