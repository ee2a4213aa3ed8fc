# shellcheck shell=sh
# trustmesh: put a rotated key in place, once the new key was proven on
# every node it must open; the old pair is moved aside on the node, never
# copied off it.
#
# Run as `sh -c SCRIPT trustmesh KEY NEW ASIDE` (scripts::command_line), in
# the account's home.
#
# Arguments: $1 KEY    the key's path (relative to the home or absolute)
#            $2 NEW    the new pair's path (NEW and NEW.pub exist)
#            $3 ASIDE  where the old pair goes (ASIDE and ASIDE.pub must
#                      not exist)
# A certificate of the new key (NEW-cert.pub, certificate mode) moves with
# it: the old KEY-cert.pub to ASIDE-cert.pub (which must not exist), then
# NEW-cert.pub to KEY-cert.pub once the new pair is in place.
# Refuses when a path is a symbolic link, the new pair is missing, or the
# aside names are taken. The old pair is moved aside before the new one is
# moved in, each with a rename in the same folder, so at every moment the
# key's path holds a whole old pair, a whole new pair, or nothing.
# Output:    `TM-OK`, or `TM-ERR REASON` and exit 3 (refused) or 5 (a rename
#            failed; REASON ends with mv's standard error).
set -u
# The standard error of a failed tool, on one line: the OS's own words.
oneline() { printf '%s' "$1" | tr '\n' ' '; }
cd ~ 2>/dev/null || { echo "TM-ERR cannot enter the home folder: $(oneline "$(cd ~ 2>&1 || exit)")"; exit 3; }
k=$1
n=$2
a=$3
for f in "$k" "$k.pub" "$n" "$n.pub" "$a" "$a.pub" "$k-cert.pub" "$n-cert.pub" "$a-cert.pub"; do
  if [ -L "$f" ]; then echo "TM-ERR $f is a symbolic link"; exit 3; fi
done
if [ ! -f "$n" ] || [ ! -f "$n.pub" ]; then echo "TM-ERR the new key $n is missing"; exit 3; fi
if [ -e "$a" ] || [ -e "$a.pub" ]; then echo "TM-ERR $a already exists: the old key is not moved over it"; exit 3; fi
c=
if [ -f "$n-cert.pub" ]; then
  c=1
  if [ -e "$a-cert.pub" ]; then echo "TM-ERR $a-cert.pub already exists: the old certificate is not moved over it"; exit 3; fi
  if [ -e "$k-cert.pub" ]; then e=$(mv "$k-cert.pub" "$a-cert.pub" 2>&1) || { echo "TM-ERR cannot move $k-cert.pub aside: $(oneline "$e")"; exit 5; }; fi
fi
if [ -e "$k" ]; then e=$(mv "$k" "$a" 2>&1) || { echo "TM-ERR cannot move $k aside: $(oneline "$e")"; exit 5; }; fi
if [ -e "$k.pub" ]; then e=$(mv "$k.pub" "$a.pub" 2>&1) || { echo "TM-ERR cannot move $k.pub aside: $(oneline "$e")"; exit 5; }; fi
e=$(mv "$n" "$k" 2>&1) || { echo "TM-ERR cannot move $n to $k: $(oneline "$e")"; exit 5; }
e=$(mv "$n.pub" "$k.pub" 2>&1) || { echo "TM-ERR cannot move $n.pub to $k.pub: $(oneline "$e")"; exit 5; }
if [ -n "$c" ]; then e=$(mv "$n-cert.pub" "$k-cert.pub" 2>&1) || { echo "TM-ERR cannot move $n-cert.pub to $k-cert.pub: $(oneline "$e")"; exit 5; }; fi
d=$(dirname "$k")
sync "$d" 2>/dev/null || sync
echo TM-OK
