# shellcheck shell=sh
# trustmesh: replace a file atomically, only if it is still what the plan
# read.
#
# Run as `sh -c SCRIPT trustmesh PATH EXPECTED MODE NEWSUM`
# (scripts::command_line), in the account's home; for /etc/hosts
# (options.hosts_file) as root, or as `sudo -n sh -c ...`. With `keep`,
# the file's mode and (for root) its owner are kept (`cp -p`).
#
# Arguments: $1 PATH     the file, relative to the home or absolute
#            $2 EXPECTED `cksum` of the file as the plan read it
#                        ("CRC SIZE"), or `absent` when it had no file
#            $3 MODE     octal mode for the new file, or `keep` to keep
#                        the existing file's mode
#            $4 NEWSUM   `cksum` of the new content ("CRC SIZE")
# Standard input: the new content.
#
# The new content goes to a temporary file in the same folder, gets the
# mode, is checked against NEWSUM (so a content cut short by a dropped
# connection never replaces the file), is flushed, and is renamed over the
# file after a second check of the old content: the file is always either
# the old or the new version, and an edit made by someone else since the
# plan is never overwritten. The folder is flushed after the rename, so
# the rename itself survives a crash (`sync DIR` fsyncs the folder with
# GNU coreutils 8.24+ and busybox; BSD and macOS `sync` ignore the operand
# and sync everything, and a `sync` that fails on one is run without). PATH must not be a symbolic link and must be
# owned by this account.
#
# Output:    `TM-OK` on success;
#            `TM-CONFLICT NOW` and exit 4 when the file is no longer
#            EXPECTED (NOW is its `cksum`, or `absent`);
#            `TM-ERR REASON` and exit 3 (refused: home, symbolic link,
#            owner, no temporary file) or 5 (writing, mode, incomplete
#            content, rename). When a tool fails, REASON ends with what it
#            wrote on standard error, on one line: the OS's own words (`No
#            space left on device`, `Read-only file system`, ...).
set -u
# The standard error of a failed tool, on one line.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
# An absolute PATH (/etc/hosts, maybe under `sudo -n`, whose HOME may not
# be the account's) does not need the home.
case $1 in
  /*) cd ~ 2>/dev/null || cd / ;;
  *) cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; } ;;
esac
f=$1
# Word $1 of the rest ($2...), split on blanks (no pathname expansion),
# in w: `cksum`'s and `ls -ldn`'s fields read without one more `awk`.
word() {
  n=$1
  shift
  set -f
  # shellcheck disable=SC2048,SC2086 # split into words on purpose
  set -- $*
  set +f
  w=
  if [ "$#" -ge "$n" ]; then
    shift $((n - 1))
    w=$1
  fi
}
# `cksum` of PATH ("CRC SIZE") or `absent`, in now.
sum() {
  if [ -e "$f" ] || [ -L "$f" ]; then
    now=$(cksum < "$f")
    word 1 "$now"
    c=$w
    word 2 "$now"
    now="$c $w"
  else
    now=absent
  fi
}
if [ -L "$f" ]; then echo "TM-ERR $f is a symbolic link"; exit 3; fi
if [ -e "$f" ]; then
  # shellcheck disable=SC2012 # ls -ldn is the portable way to read the owner (stat(1) differs between GNU, BSD and busybox)
  word 3 "$(ls -ldn "$f")"
  owner=$w
  if [ "$owner" != "$(id -u)" ]; then echo "TM-ERR $f is owned by uid $owner, not by this account"; exit 3; fi
fi
sum
if [ "$now" != "$2" ]; then echo "TM-CONFLICT $now"; exit 4; fi
case $f in
  */*) d=${f%/*}; d=${d:-/} ;;
  *) d=. ;;
esac
tmp=$(mktemp "$d/.trustmesh.XXXXXX" 2>&1) || { echo "TM-ERR cannot create a file in $d: $(oneline "$tmp")"; exit 3; }
trap 'rm -f "$tmp"' EXIT
if [ "$3" = keep ]; then
  e=$(cp -p "$f" "$tmp" 2>&1) || { echo "TM-ERR cannot write a copy of $f (to keep its mode): $(oneline "$e")"; exit 5; }
fi
e=$(cat 2>&1 >"$tmp") || { echo "TM-ERR cannot write the new content of $f: $(oneline "$e")"; exit 5; }
# All or nothing: if the connection dropped while the content was on its
# way, cat saw an early end of input; such a file is never renamed.
got=$(cksum < "$tmp")
word 1 "$got"
c=$w
word 2 "$got"
got="$c $w"
if [ "$got" != "$4" ]; then echo "TM-ERR the new content arrived incomplete ($got, not $4)"; exit 5; fi
if [ "$3" != keep ]; then e=$(chmod "$3" "$tmp" 2>&1) || { echo "TM-ERR cannot set mode $3 on the new content of $f: $(oneline "$e")"; exit 5; }; fi
sync "$tmp" 2>/dev/null || sync
sum
if [ "$now" != "$2" ]; then echo "TM-CONFLICT $now"; exit 4; fi
e=$(mv -f "$tmp" "$f" 2>&1) || { echo "TM-ERR cannot rename over $f: $(oneline "$e")"; exit 5; }
trap - EXIT
sync "$d" 2>/dev/null || sync
echo TM-OK
