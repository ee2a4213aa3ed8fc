# shellcheck shell=sh
# trustmesh: create a private folder inside ~/.ssh (mode 0700) when it is
# missing, e.g. ~/.ssh/config.d for options.ssh_config.
#
# Run as `sh -c SCRIPT trustmesh PATH` (scripts::command_line), in the
# account's home, locally for the manager or over ssh for any other node.
#
# Arguments: $1 PATH  the folder, relative to the home, under `.ssh/`
#                     (`.ssh/NAME`, one level, no `..`)
# Output:    `TM-OK` when PATH is a directory (it was there, or was made);
#            `TM-ERR REASON` and exit 3 when the home cannot be entered,
#            PATH is not a folder name under .ssh, PATH exists and is not a
#            directory (or is a symbolic link), or it cannot be created
#            (then REASON ends with mkdir's standard error).
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
case $1 in
  .ssh/ | .ssh/*/* | *..*) echo "TM-ERR $1 is not a folder directly under ~/.ssh"; exit 3 ;;
  .ssh/*) ;;
  *) echo "TM-ERR $1 is not a folder directly under ~/.ssh"; exit 3 ;;
esac
if [ -L "$1" ]; then echo "TM-ERR $1 is a symbolic link"; exit 3; fi
if [ -d "$1" ]; then echo TM-OK; exit 0; fi
if [ -e "$1" ]; then echo "TM-ERR $1 exists and is not a directory"; exit 3; fi
e=$(mkdir -m 700 "$1" 2>&1) || { echo "TM-ERR cannot create $1: $(oneline "$e")"; exit 3; }
echo TM-OK
