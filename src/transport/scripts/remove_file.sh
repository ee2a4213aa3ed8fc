# shellcheck shell=sh
# trustmesh: remove a file trustmesh owns (the aliases file of
# options.ssh_config, once the option is off), only if it is still what the
# plan read.
#
# Run as `sh -c SCRIPT trustmesh PATH EXPECTED` (scripts::command_line), in
# the account's home.
#
# Arguments: $1 PATH     the file, relative to the home or absolute
#            $2 EXPECTED `cksum` of the file as the plan read it
#                        ("CRC SIZE")
# Output:    `TM-OK` when the file is gone (removed, or already absent);
#            `TM-CONFLICT NOW` and exit 4 when the file is no longer
#            EXPECTED (NOW is its `cksum`);
#            `TM-ERR REASON` and exit 3 (home, symbolic link, not a regular
#            file, owner) or 5 (the removal failed; REASON ends with
#            rm's standard error).
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
case $1 in
  /*) cd ~ 2>/dev/null || cd / ;;
  *) cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; } ;;
esac
f=$1
if [ -L "$f" ]; then echo "TM-ERR $f is a symbolic link"; exit 3; fi
if [ ! -e "$f" ]; then echo TM-OK; exit 0; fi
if [ ! -f "$f" ]; then echo "TM-ERR $f is not a regular file"; exit 3; fi
# shellcheck disable=SC2012 # ls -ldn is the portable way to read the owner (stat(1) differs between GNU, BSD and busybox)
owner=$(ls -ldn "$f" | awk '{print $3}')
if [ "$owner" != "$(id -u)" ]; then echo "TM-ERR $f is owned by uid $owner, not by this account"; exit 3; fi
now=$(cksum < "$f" | awk '{print $1" "$2}')
if [ "$now" != "$2" ]; then echo "TM-CONFLICT $now"; exit 4; fi
e=$(rm -f "$f" 2>&1) || { echo "TM-ERR cannot remove $f: $(oneline "$e")"; exit 5; }
sync "$(dirname "$f")" 2>/dev/null || sync
echo TM-OK
