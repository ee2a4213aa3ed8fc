# shellcheck shell=sh
# trustmesh: create ~/.ssh (mode 0700) when it is missing.
#
# Run as `sh -c SCRIPT trustmesh` (scripts::command_line), in the account's
# home, locally for the manager or over ssh for any other node.
#
# Arguments: none.
# Output:    `TM-OK` when ~/.ssh is a directory (it was there, or was made);
#            `TM-ERR REASON` and exit 3 when the home cannot be entered or
#            ~/.ssh exists and is not a directory, or cannot be created
#            (then REASON ends with the failing tool's standard error).
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
if [ -d .ssh ]; then echo TM-OK; exit 0; fi
if [ -e .ssh ] || [ -L .ssh ]; then echo "TM-ERR ~/.ssh exists and is not a directory"; exit 3; fi
e=$(mkdir -m 700 .ssh 2>&1) || { echo "TM-ERR cannot create ~/.ssh: $(oneline "$e")"; exit 3; }
echo TM-OK
