# shellcheck shell=sh
# trustmesh: create ~/.ssh (mode 0700) when it is missing.
#
# Run as `sh -c SCRIPT trustmesh` (scripts::command_line), in the account's
# home, locally for the manager or over ssh for any other node.
#
# Arguments: none.
# Output:    `TM-OK` when ~/.ssh is a directory (it was there, or was made);
#            `TM-ERR REASON` and exit 3 when the home cannot be entered or
#            ~/.ssh exists and is not a directory, or cannot be created.
set -u
cd ~ || { echo "TM-ERR cannot enter the home folder"; exit 3; }
if [ -d .ssh ]; then echo TM-OK; exit 0; fi
if [ -e .ssh ] || [ -L .ssh ]; then echo "TM-ERR ~/.ssh exists and is not a directory"; exit 3; fi
mkdir -m 700 .ssh || { echo "TM-ERR cannot create ~/.ssh"; exit 3; }
echo TM-OK
