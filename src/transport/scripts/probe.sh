# shellcheck shell=sh
# trustmesh probe v1: read-only report on this account, its ~/.ssh and the
# host's public host keys. Arguments: --read NAME... --stat NAME...
# (names relative to ~/.ssh). Only tm_read ever opens a file under ~/.ssh;
# names given after --stat go to tm_statonly, which only runs ls -ldn.
#
# Sent on standard input to `sh -s -- ARGS...`
# (probe::ProbeRequest::command_line), over ssh for a worker or locally for
# the manager; its report is read by probe::parse_probe_output. Data
# reaches it only as arguments. It runs under dash, bash, busybox sh with busybox applets and
# macOS /bin/sh (bash --posix) with BSD tools: it uses only `ls -ldn`, `wc -c`, `cat`,
# `grep -q`/`grep -l`, `id`, `hostname`/`uname -n`, `cd -P`, `printf`, `[` and
# `find` (`-prune`, `-mmin`: GNU, BSD and busybox have them); with
# `--privilege`, `command -v sudo` and `sudo -n true` (never a prompt).
# Each tool runs once for all the files where it can (one `ls -ldn`, one
# `wc -c`, one `grep -l`; a file they miss is looked at alone), since on a
# busy node every process is the cost; `find` runs only when a
# `.trustmesh.*` file is there.
#
# Arguments:
# `--read NAME... --stat NAME... [--etc-hosts] [--privilege] [--sshd]`, names
# relative to `~/.ssh`, with no `/` except as `config.d/NAME` (the one
# folder trustmesh writes in, for options.ssh_config). Files after
# `--read` are stat'ed and, when they are regular files (not symlinks),
# read. Files after `--stat` are only listed with `ls -ldn`: the function
# that handles them has no path to `cat`, so a private key named there is
# never opened. As a second guard, a `--read` file that contains a private
# key header (`PRIVATE KEY-----`, `PuTTY-User-Key-File-`) is refused, not
# printed. `--etc-hosts` adds a `file read /etc/hosts` block (read like a
# `--read` file); `--privilege` adds the `privilege` record (root, a
# passwordless `sudo -n true`, never a password prompt, or none);
# `--sshd` (host_certificates) adds a `file read` block for
# `/etc/ssh/sshd_config`, a `file stat` block for `/etc/ssh/sshd_config.d`
# and `/etc/ssh/ssh_config.d`, and a `file read` block for each
# `/etc/ssh/sshd_config.d/trustmesh-*.conf`,
# `/etc/ssh/ssh_config.d/trustmesh-*.conf`, `/etc/ssh/ssh_host_*_key-cert.pub`
# and `/etc/ssh/trustmesh-*.krl` (public files only).
# `--sshd-leftovers` (host_certificates off): the same blocks as `--sshd`,
# and the `privilege` record, at the end of the report, only when one of
# those trustmesh files (or a host certificate) is there: a node without
# them runs no process for it (globs and `[` only).
#
# Output (format v1):
# Anything before the begin marker line or after the end marker line is
# ignored (motd, `.bashrc` noise). Between them, one record per line:
#
# TRUSTMESH-PROBE-BEGIN v1
# user alice                      (rest of line; may be empty if unknown)
# uid 1000
# gid 1000
# hostname node1                  (rest of line)
# client 192.0.2.10               (optional: the address this connection
#                                  came from, the first word of sshd's
#                                  SSH_CONNECTION; absent when not set)
# home /home/alice                (rest of line; from `cd ~ && pwd -P`)
# home-stat dir 0750 1000 1000    (STAT, see below)
# ssh-stat dir 0700 1000 1000     (STAT)
# file read authorized_keys       (one block per requested file, in order;
# stat file 0600 1000 1000         GROUP is read|stat, NAME is the rest)
# data 123                        (read group, regular file only: byte count,
# <exactly 123 raw bytes>          the raw bytes, then a newline and
# end 0                            `end STATUS`, STATUS = cat's exit status)
# file read config
# stat file 0600 0 0
# unreadable                      (instead of data: could not be read)
# file read id_rsa
# stat file 0600 1000 1000
# refused                         (instead of data: holds a private key)
# file stat id_ed25519            (stat group: never followed by data)
# stat file 0600 1000 1000
# hostkey                         (one per readable /etc/ssh/ssh_host_*_key.pub,
# data 89                          followed by a data block or `unreadable`)
# <89 raw bytes>
# end 0
# file read /etc/hosts            (--etc-hosts: a file block as above)
# privilege sudo                  (--privilege: root | sudo | none)
# file read /etc/ssh/sshd_config  (--sshd: file blocks as above)
# sshd-version OpenSSH_9.2p1    (--sshd-version: OpenSSH's `sshd -V`, whose
#                                  usage names it before 9.1, else
#                                  `dropbear -V` as dropbear_2022.83)
# leftover .trustmesh.AbC123       (a temporary file of an interrupted apply,
#                                  ten minutes old or more; name only)
# file read /etc/ssh/sshd_config   (--sshd-leftovers, only when trustmesh's
# privilege root                    host certificate files are there: the
#                                  --sshd blocks and `privilege`, last)
# TRUSTMESH-PROBE-END
#
# `STAT` is `missing`, `error` (exists or may exist but could not be
# listed, e.g. `~/.ssh` not searchable) or `KIND MODE UID GID` with KIND
# one of `file`, `dir`, `symlink`, `other`, MODE four octal digits
# (setuid/setgid/sticky included) and numeric owner and group, all parsed
# from `ls -ldn` (which does not follow symlinks). A fatal problem on the
# node (no home, bad argument) is reported as `error MESSAGE` followed by
# the end marker.
set -f
unset CDPATH
LC_ALL=C
export LC_ALL
tm_nl='
'
tm_end() {
  printf 'TRUSTMESH-PROBE-END\n'
  exit 0
}
tm_fail() {
  printf 'error %s\n' "$1"
  tm_end
}
tm_kv() {
  case $2 in *"$tm_nl"*) tm_fail "$1 contains a newline" ;; esac
  printf '%s %s\n' "$1" "$2"
}
tm_perm() {
  tm_m=$1
  tm_s=0
  tm_o=
  # shellcheck disable=SC2209 # file, dir, ... are words, not commands
  case $tm_m in
    -*) tm_k=file ;;
    d*) tm_k=dir ;;
    l*) tm_k=symlink ;;
    *) tm_k=other ;;
  esac
  tm_m=${tm_m#?}
  for tm_b in 4 2 1; do
    case $tm_m in r*) tm_d=4 ;; -*) tm_d=0 ;; *) return 1 ;; esac
    tm_m=${tm_m#?}
    case $tm_m in w*) tm_d=$((tm_d + 2)) ;; -*) ;; *) return 1 ;; esac
    tm_m=${tm_m#?}
    case $tm_m in
      x*) tm_d=$((tm_d + 1)) ;;
      s* | t*) tm_d=$((tm_d + 1)); tm_s=$((tm_s + tm_b)) ;;
      S* | T*) tm_s=$((tm_s + tm_b)) ;;
      -*) ;;
      *) return 1 ;;
    esac
    tm_m=${tm_m#?}
    tm_o=$tm_o$tm_d
  done
  tm_mode=$tm_s$tm_o
}
# The one line of the listing $2 that is $1's (`... $1`, or `... $1 ->
# TARGET` for a symbolic link) in tm_l; empty when none or several are.
tm_pick() {
  tm_l=
  tm_c=0
  IFS=$tm_nl
  for tm_x in $2; do
    case $tm_x in
      l*" $1 -> "*) tm_l=$tm_x tm_c=$((tm_c + 1)) ;;
      l*) ;;
      *" $1") tm_l=$tm_x tm_c=$((tm_c + 1)) ;;
    esac
  done
  IFS=$tm_ifs
  [ "$tm_c" -eq 1 ] || tm_l=
}
# Whether $1 is a line of the list $2.
tm_has() {
  case $tm_nl$2$tm_nl in *"$tm_nl$1$tm_nl"*) return 0 ;; esac
  return 1
}
tm_stat() {
  tm_k=none
  tm_l=
  # A missing file needs no `ls`; one listed up front (tm_ls) needs no
  # second one.
  if [ -e "$1" ] || [ -L "$1" ]; then
    tm_pick "$1" "$tm_ls"
    [ -n "$tm_l" ] || tm_l=$(ls -ldn "$1" 2>/dev/null)
  fi
  if [ -z "$tm_l" ]; then
    if [ -e "$1" ] || [ -L "$1" ]; then
      printf 'error\n'
    elif [ -d "$2" ] && [ ! -x "$2" ]; then
      printf 'error\n'
    else
      printf 'missing\n'
    fi
    return 0
  fi
  # shellcheck disable=SC2086 # split into ls's fields on purpose (set -f is on)
  set -- $tm_l
  if [ "$#" -lt 4 ] || ! tm_perm "$1"; then
    tm_k=none
    printf 'error\n'
    return 0
  fi
  case $3 in '' | *[!0-9]*) tm_k=none; printf 'error\n'; return 0 ;; esac
  case $4 in '' | *[!0-9]*) tm_k=none; printf 'error\n'; return 0 ;; esac
  printf '%s %s %s %s\n' "$tm_k" "$tm_mode" "$3" "$4"
}
# $1's byte count from the up-front `wc -c` (tm_wc), in tm_n; empty when
# it has none.
tm_size() {
  tm_n=
  IFS=$tm_nl
  for tm_x in $tm_wc; do
    tm_x=${tm_x#"${tm_x%%[! ]*}"}
    tm_y=${tm_x%% *}
    if [ "${tm_x#"$tm_y"}" = " $1" ]; then
      tm_n=$tm_y
      break
    fi
  done
  IFS=$tm_ifs
}
tm_data() {
  tm_size "$1"
  if [ -z "$tm_n" ]; then
    tm_n=$(wc -c 2>/dev/null <"$1") || {
      printf 'unreadable\n'
      return 0
    }
  fi
  # shellcheck disable=SC2086 # drops the padding some wc print (set -f is on)
  set -- "$1" $tm_n
  case ${2-} in '' | *[!0-9]*) printf 'unreadable\n'; return 0 ;; esac
  printf 'data %s\n' "$2"
  cat "$1" 2>/dev/null
  printf '\nend %s\n' "$?"
}
tm_parent() {
  case $1 in */*) tm_p=.ssh/${1%/*} ;; *) tm_p=.ssh ;; esac
}
tm_read() {
  printf 'file read %s\n' "$1"
  printf 'stat '
  tm_parent "$1"
  tm_stat ".ssh/$1" "$tm_p"
  if [ "$tm_k" = file ] && [ -f ".ssh/$1" ] && [ ! -L ".ssh/$1" ]; then
    # The up-front `grep -l` answers for the files it searched, when it
    # could read them all.
    if [ "$tm_gs" -le 1 ] && tm_has ".ssh/$1" "$tm_rd"; then
      tm_has ".ssh/$1" "$tm_keys"
    else
      grep -q -e 'PRIVATE KEY-----' -e 'PuTTY-User-Key-File-' ".ssh/$1" >/dev/null 2>&1
    fi
    case $? in
      0) printf 'refused\n' ;;
      1) tm_data ".ssh/$1" ;;
      *) printf 'unreadable\n' ;;
    esac
  fi
}
tm_statonly() {
  printf 'file stat %s\n' "$1"
  printf 'stat '
  tm_parent "$1"
  tm_stat ".ssh/$1" "$tm_p"
}
# The arguments' files (and ".", ".ssh", /etc/hosts) that exist, listed
# with one `ls -ldn` into tm_ls.
tm_lsall() {
  tm_i=$#
  set -- "$@" . .ssh
  while [ "$tm_i" -gt 0 ]; do
    tm_a=$1
    shift
    tm_i=$((tm_i - 1))
    case $tm_a in
      --etc-hosts) set -- "$@" /etc/hosts ;;
      -*) ;;
      *) if [ -e ".ssh/$tm_a" ] || [ -L ".ssh/$tm_a" ]; then set -- "$@" ".ssh/$tm_a"; fi ;;
    esac
  done
  tm_ls=$(ls -ldn -- "$@" 2>/dev/null)
}
# The `--read` files that are regular files: which hold a private key
# (one `grep -l`, its status in tm_gs, the files it searched in tm_rd), and
# their sizes with /etc/hosts' and the host keys' (one `wc -c`, in tm_wc).
tm_readall() {
  tm_i=$#
  tm_g=
  tm_rd=
  while [ "$tm_i" -gt 0 ]; do
    tm_a=$1
    shift
    tm_i=$((tm_i - 1))
    # shellcheck disable=SC2209 # read and stat are words, not commands
    case $tm_a in
      --read) tm_g=read ;;
      --stat) tm_g=stat ;;
      -*) ;;
      *)
        if [ "$tm_g" = read ] && [ -f ".ssh/$tm_a" ] && [ ! -L ".ssh/$tm_a" ]; then
          set -- "$@" ".ssh/$tm_a"
          tm_rd=$tm_rd$tm_nl.ssh/$tm_a
        fi
        ;;
    esac
  done
  tm_keys=
  tm_gs=1
  if [ "$#" -gt 0 ]; then
    tm_keys=$(grep -l -e 'PRIVATE KEY-----' -e 'PuTTY-User-Key-File-' -- "$@" 2>/dev/null)
    tm_gs=$?
  fi
  set +f
  set -- "$@" /etc/hosts /etc/ssh/ssh_host_*_key.pub
  set -f
  tm_wc=$(wc -c -- "$@" 2>/dev/null)
}
tm_ifs=$IFS
tm_ls=
tm_wc=
tm_gs=2
printf '\nTRUSTMESH-PROBE-BEGIN v1\n'
case ${1-} in
  '' | --read | --stat) ;;
  *) tm_fail 'the first argument must be --read or --stat' ;;
esac
for tm_a in "$@"; do
  case $tm_a in
    --read | --stat | --etc-hosts | --privilege | --sshd | --sshd-version | --sshd-leftovers) ;;
    '' | . | *..* | -* | *"$tm_nl"*) tm_fail 'bad file name argument' ;;
    config.d/ | config.d/*/*) tm_fail 'bad file name argument' ;;
    config.d/*) ;;
    */*) tm_fail 'bad file name argument' ;;
  esac
done
tm_v=$(id -un 2>/dev/null) || tm_v=
[ -n "$tm_v" ] || tm_v=${LOGNAME-${USER-}}
tm_kv user "$tm_v"
tm_uid=$(id -u 2>/dev/null) || tm_fail 'id -u failed'
tm_kv uid "$tm_uid"
tm_v=$(id -g 2>/dev/null) || tm_fail 'id -g failed'
tm_kv gid "$tm_v"
tm_v=$(hostname 2>/dev/null) || tm_v=
[ -n "$tm_v" ] || tm_v=$(uname -n 2>/dev/null) || tm_v=
tm_kv hostname "$tm_v"
tm_v=${SSH_CONNECTION-}
case $tm_v in
  '' | *[!0-9A-Fa-f.:%\ ]*) ;;
  *) tm_kv client "${tm_v%% *}" ;;
esac
cd -P ~ 2>/dev/null || tm_fail 'cannot enter the home directory'
# `cd -P` leaves the physical path in PWD (no `pwd -P` process).
tm_v=${PWD-}
case $tm_v in /*) ;; *) tm_fail 'cannot resolve the home directory' ;; esac
tm_kv home "$tm_v"
# Every file's `ls -ldn`, `wc -c` and private key check at once, up front
# (one process each instead of one per file); a file they miss is looked
# at alone.
tm_lsall "$@"
tm_readall "$@"
printf 'home-stat '
tm_stat . .
printf 'ssh-stat '
tm_stat .ssh .
tm_g=
tm_eh=
tm_pv=
tm_sd=
tm_vr=
tm_sl=
for tm_a in "$@"; do
  # shellcheck disable=SC2209 # read and stat are words, not commands
  case $tm_a in
    --read) tm_g=read ;;
    --stat) tm_g=stat ;;
    --etc-hosts) tm_eh=1 ;;
    --privilege) tm_pv=1 ;;
    --sshd) tm_sd=1 ;;
    --sshd-version) tm_vr=1 ;;
    --sshd-leftovers) tm_sl=1 ;;
    *)
      case $tm_g in
        read) tm_read "$tm_a" ;;
        stat) tm_statonly "$tm_a" ;;
      esac
      ;;
  esac
done
# A public file outside ~/.ssh, by its absolute path (its folder: $2).
tm_etc() {
  printf 'file read %s\n' "$1"
  printf 'stat '
  tm_stat "$1" "$2"
  if [ "$tm_k" = file ] && [ -f "$1" ] && [ ! -L "$1" ]; then
    tm_data "$1"
  fi
}
if [ -n "$tm_eh" ]; then
  tm_etc /etc/hosts /etc
fi
# sshd's config, its drop-in folders, and trustmesh's files for host
# certificates (public files only).
tm_sshd() {
  tm_etc /etc/ssh/sshd_config /etc/ssh
  for tm_f in /etc/ssh/sshd_config.d /etc/ssh/ssh_config.d; do
    printf 'file stat %s\n' "$tm_f"
    printf 'stat '
    tm_stat "$tm_f" /etc/ssh
  done
  set +f
  for tm_f in /etc/ssh/sshd_config.d/trustmesh-*.conf /etc/ssh/ssh_config.d/trustmesh-*.conf \
    /etc/ssh/ssh_host_*_key-cert.pub /etc/ssh/trustmesh-*.krl; do
    set -f
    case $tm_f in
      *[!A-Za-z0-9._/-]*) ;;
      *) if [ -f "$tm_f" ]; then tm_etc "$tm_f" "${tm_f%/*}"; fi ;;
    esac
  done
  set -f
}
tm_privilege() {
  if [ "$tm_uid" = 0 ]; then
    tm_kv privilege root
  elif command -v sudo >/dev/null 2>&1 && sudo -n true </dev/null >/dev/null 2>&1; then
    tm_kv privilege sudo
  else
    tm_kv privilege none
  fi
}
if [ -n "$tm_sd" ]; then
  tm_sshd
fi
if [ -n "$tm_pv" ]; then
  tm_privilege
fi
set +f
for tm_h in /etc/ssh/ssh_host_*_key.pub; do
  set -f
  if [ -f "$tm_h" ] && [ -r "$tm_h" ]; then
    printf 'hostkey\n'
    tm_data "$tm_h"
  fi
done
set -f
# Temporary files an interrupted apply left in ~/.ssh (the replace
# script's `.trustmesh.XXXXXX`), once they are ten minutes old: a run in
# flight elsewhere keeps its own.
tm_lo=
set +f
for tm_f in .ssh/.trustmesh.*; do
  if [ -e "$tm_f" ]; then tm_lo=1; fi
done
set -f
if [ -n "$tm_lo" ] && [ -d .ssh ] && [ -x .ssh ]; then
  find .ssh/. ! -name . -prune -type f -name '.trustmesh.*' -mmin +10 2>/dev/null |
    while IFS= read -r tm_f; do
      tm_f=${tm_f##*/}
      case $tm_f in
        .trustmesh.*[!A-Za-z0-9._-]*) ;;
        .trustmesh.?*) printf 'leftover %s\n' "$tm_f" ;;
      esac
    done
fi
if [ -n "$tm_vr" ]; then
  for tm_f in sshd /usr/sbin/sshd /usr/local/sbin/sshd dropbear /usr/sbin/dropbear; do
    command -v "$tm_f" >/dev/null 2>&1 || continue
    tm_v=$("$tm_f" -V 2>&1 </dev/null) || :
    case $tm_v in
      *OpenSSH_*) tm_v=OpenSSH_${tm_v#*OpenSSH_} ;;
      *[Dd]ropbear\ v*) tm_v=dropbear_${tm_v#*ropbear v} ;;
      *) continue ;;
    esac
    tm_kv sshd-version "${tm_v%%[!A-Za-z0-9_.]*}"
    break
  done
fi
# --sshd-leftovers: trustmesh's files for host certificates, read only
# when one is there (host_certificates was turned off).
if [ -n "$tm_sl" ] && [ -z "$tm_sd" ]; then
  tm_x=
  set +f
  for tm_f in /etc/ssh/sshd_config.d/trustmesh-*.conf /etc/ssh/ssh_config.d/trustmesh-*.conf \
    /etc/ssh/trustmesh-*.krl /etc/ssh/ssh_host_*_key-cert.pub; do
    if [ -f "$tm_f" ]; then tm_x=1; fi
  done
  set -f
  if [ -n "$tm_x" ]; then
    tm_sshd
    if [ -z "$tm_pv" ]; then tm_privilege; fi
  fi
fi
tm_end
