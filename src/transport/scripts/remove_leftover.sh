# shellcheck shell=sh
# trustmesh: remove a temporary file an interrupted apply left in ~/.ssh
# (shown in the plan first).
#
# Run as `sh -c SCRIPT trustmesh PATH` (scripts::command_line), in the
# account's home.
#
# Arguments: $1 PATH  `.ssh/.trustmesh.XXXXXX`; any other path is refused.
# Output:    `TM-OK` (also when the file is gone already), or `TM-ERR
#            REASON` and exit 3 (refused) or 5 (rm failed; REASON ends
#            with its standard error).
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
case $1 in
  .ssh/.trustmesh.*/* | *..*) echo "TM-ERR $1 is not a trustmesh temporary file"; exit 3 ;;
  .ssh/.trustmesh.?*) ;;
  *) echo "TM-ERR $1 is not a trustmesh temporary file"; exit 3 ;;
esac
if [ -L "$1" ] || { [ -e "$1" ] && [ ! -f "$1" ]; }; then echo "TM-ERR $1 is not a plain file"; exit 3; fi
e=$(rm -f "$1" 2>&1) || { echo "TM-ERR cannot remove $1: $(oneline "$e")"; exit 5; }
echo TM-OK
