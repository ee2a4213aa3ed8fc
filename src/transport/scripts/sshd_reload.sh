# shellcheck shell=sh
# trustmesh: once trustmesh's sshd drop-in and host certificates are
# written (host_certificates), check sshd's whole config with `sshd -t`;
# when it is refused, put the drop-in back as it was and do not reload;
# else reload sshd as the platform does it: `systemctl reload` when
# systemd runs sshd, else SIGHUP to the pid in sshd's own `PidFile` (as
# `sshd -T` reports it: what the init script signals, and the right sshd
# when it does not use the default file), else `service ssh reload`.
#
# Run as `sh -c SCRIPT trustmesh DROPIN RESTORE` (scripts::command_line),
# as root (directly or with `sudo -n`).
#
# Arguments: $1 DROPIN   the drop-in, an absolute path
#            $2 RESTORE  `absent` (the drop-in did not exist: removed on
#                        failure) or `keep` (its old text is on standard
#                        input, put back on failure)
# Output:    `TM-OK` once sshd was told to reload;
#            `TM-ERR REASON` and exit 3 (no sshd) or 5 (`sshd -t` refused
#            the config: REASON holds sshd's words; or the reload failed).
set -u
oneline() { printf '%s' "$1" | tr '\n' ' '; }
cd / || exit 3
d=$1
sshd=$(command -v sshd 2>/dev/null) || sshd=
if [ -z "$sshd" ]; then
  for p in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd; do
    if [ -x "$p" ]; then sshd=$p; break; fi
  done
fi
if [ -z "$sshd" ]; then echo "TM-ERR sshd is not found on this node"; exit 3; fi
if ! e=$("$sshd" -t 2>&1); then
  case $2 in
    absent) r=$(rm -f "$d" 2>&1) || r="cannot remove it: $r" ;;
    *)
      r=
      t=$(mktemp "$d.XXXXXX" 2>&1) || r="cannot make a temporary file: $t"
      if [ -z "$r" ]; then
        { cat >"$t" && chmod 644 "$t" && mv -f "$t" "$d"; } 2>/dev/null || { rm -f "$t"; r="cannot write it back"; }
      fi
      ;;
  esac
  if [ -n "$r" ]; then
    echo "TM-ERR sshd -t refused the config: $(oneline "$e"); the previous $d could not be put back ($(oneline "$r")); sshd was not reloaded"
  else
    echo "TM-ERR sshd -t refused the config: $(oneline "$e"); the previous $d was put back and sshd was not reloaded"
  fi
  exit 5
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for u in ssh sshd; do
    if systemctl is-active --quiet "$u" 2>/dev/null; then
      e=$(systemctl reload "$u" 2>&1) || { echo "TM-ERR systemctl reload $u: $(oneline "$e")"; exit 5; }
      echo TM-OK
      exit 0
    fi
  done
fi
pf=$("$sshd" -T 2>/dev/null | awk '$1 == "pidfile" { print $2; exit }')
if [ -n "$pf" ] && [ "$pf" != none ] && [ -f "$pf" ]; then
  pid=$(cat "$pf" 2>/dev/null) || pid=
  case $pid in
    '' | *[!0-9]*) ;;
    *)
      e=$(kill -HUP "$pid" 2>&1) || { echo "TM-ERR kill -HUP $pid (from $pf): $(oneline "$e")"; exit 5; }
      echo TM-OK
      exit 0
      ;;
  esac
fi
if command -v service >/dev/null 2>&1; then
  for u in ssh sshd; do
    if [ -x "/etc/init.d/$u" ]; then
      e=$(service "$u" reload 2>&1) || { echo "TM-ERR service $u reload: $(oneline "$e")"; exit 5; }
      echo TM-OK
      exit 0
    fi
  done
fi
echo "TM-ERR sshd cannot be reloaded here: systemd does not run it, its PidFile (${pf:-unknown}) names no running sshd, and there is no service script"
exit 5
