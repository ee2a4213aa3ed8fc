# shellcheck shell=sh
# trustmesh: one node's writes in one run, then the probe's read-back of
# the same account, in the same round trip.
#
# Run as `sh -c SCRIPT trustmesh ARGS...` (transport::batch), in the
# account's home, locally for the manager or over ssh for any other node.
# SCRIPT is this file after the single scripts, each made a function that
# runs in a subshell of its own (transport::scripts::BATCH):
# tmb_mkdir_ssh (mkdir_ssh.sh), tmb_mkdir_private (mkdir_private.sh),
# tmb_replace (replace_file.sh), tmb_remove_file (remove_file.sh),
# tmb_chmod (chmod.sh), tmb_chown (chown.sh), tmb_remove_leftover
# (remove_leftover.sh) and tmb_probe (probe.sh). Each step is the single
# script itself, with the same arguments, the same checks (compare-and-swap,
# symbolic links, owner, complete content) and the same output, so the
# outcome of each step reads exactly as it does when the script runs
# alone. Data arrives only as arguments and on standard input.
#
# Arguments: $1 `v1` (the format of this list)
#            $2 replace_file.sh's text, for steps run with `sudo -n`
#               (empty when no step is)
#            $3 remove_file.sh's text, for steps run with `sudo -n` (empty
#               when no step is)
#            then each step as 7 words: KIND AFTER LEN A1 A2 A3 A4
#              KIND  mkdir-ssh | mkdir-private PATH | replace PATH EXPECTED
#                    MODE NEWSUM | sudo-replace (the same, as root) |
#                    remove PATH EXPECTED | sudo-remove (the same, as
#                    root) | chmod MODE PATH | chown UID PATH |
#                    remove-leftover PATH (A1..A4 as the single script
#                    takes them; unused ones empty)
#              AFTER the steps (0-based, earlier ones, comma-separated) that
#                    must have succeeded for this one to run, or `-`
#              LEN   how many bytes of standard input are this step's new
#                    content (replace steps), else 0
#            then `--probe` and the probe's arguments (`--read NAME...
#            --stat NAME... [--etc-hosts] [--privilege]`).
# Standard input: the new contents of the replace steps, one after the
# other, LEN bytes each. It is kept in a private temporary folder first
# (the steps' outputs too), so each step reads exactly its own bytes with
# one `dd` from a regular file, and removed at the end.
#
# Output (a newline first, then):
#   TM-BATCH-BEGIN v1
#   step I ran STATUS OUTLEN ERRLEN    the step ran: its exit status, then
#   <OUTLEN bytes><ERRLEN bytes>       exactly its standard output and
#                                      error, and a newline
#   step I skipped J                   not run: step J (one it needs) did
#                                      not succeed
#   probe STATUS OUTLEN ERRLEN         the probe's report (its own format,
#   <OUTLEN bytes><ERRLEN bytes>       probe.sh), run after every step
#   TM-BATCH-END
# A step succeeds when it exits 0 (its output is then `TM-OK`). A bad
# argument or no temporary folder is `error MESSAGE` and then
# `TM-BATCH-END`, exit 3: no step runs after it.
set -u
tmb_fail() {
  printf 'error %s\n' "$(printf '%s' "$1" | tr '\n' ' ')"
  printf 'TM-BATCH-END\n'
  exit 3
}
# A header line with the sizes of what the step printed (one `wc -c`
# for both: `N out`, `M err`, `T total`), then exactly that, then a
# newline.
tmb_emit() {
  tmb_w=$(cd "$tmb_dir" && wc -c out err)
  set -f
  # shellcheck disable=SC2086 # split into wc's fields on purpose
  set -- "$1" $tmb_w
  set +f
  if [ "$#" -ne 7 ] || [ "$3" != out ] || [ "$5" != err ]; then
    tmb_fail "cannot count what a step printed in $tmb_dir"
  fi
  printf '%s %s %s\n' "$1" "$(($2 + 0))" "$(($4 + 0))"
  cat "$tmb_dir/out" "$tmb_dir/err"
  printf '\n'
}
printf '\nTM-BATCH-BEGIN v1\n'
if [ "$#" -lt 4 ] || [ "$1" != v1 ]; then tmb_fail "the arguments are not a v1 step list"; fi
tmb_sudo_replace=$2
tmb_sudo_remove=$3
shift 3
tmb_dir=$(mktemp -d "${TMPDIR:-/tmp}/trustmesh.XXXXXX" 2>&1) || tmb_fail "cannot create a temporary folder: $tmb_dir"
trap 'rm -rf "$tmb_dir"' EXIT
tmb_e=$(cat 2>&1 >"$tmb_dir/in") || tmb_fail "cannot keep the new contents in $tmb_dir: $tmb_e"
exec 3<"$tmb_dir/in"
tmb_i=0
# The steps that succeeded, as " 0 2 3 ".
tmb_done=' '
while [ "$#" -gt 0 ] && [ "$1" != --probe ]; do
  if [ "$#" -lt 7 ]; then tmb_fail "step $tmb_i: a step is 7 words"; fi
  tmb_k=$1 tmb_after=$2 tmb_len=$3 tmb_a1=$4 tmb_a2=$5 tmb_a3=$6 tmb_a4=$7
  shift 7
  case $tmb_len in '' | *[!0-9]*) tmb_fail "step $tmb_i: the content length $tmb_len is not a number" ;; esac
  case $tmb_k in
    mkdir-ssh | mkdir-private | replace | sudo-replace | remove | sudo-remove | chmod | chown | remove-leftover) ;;
    *) tmb_fail "step $tmb_i: unknown kind $tmb_k" ;;
  esac
  # This step's content, taken whether or not the step runs.
  if [ "$tmb_len" -gt 0 ]; then
    dd bs="$tmb_len" count=1 of="$tmb_dir/content" <&3 2>/dev/null || tmb_fail "step $tmb_i: cannot read its content"
  else
    : >"$tmb_dir/content"
  fi
  tmb_skip=
  if [ "$tmb_after" != - ]; then
    tmb_rest=$tmb_after,
    while [ -n "$tmb_rest" ]; do
      tmb_d=${tmb_rest%%,*}
      tmb_rest=${tmb_rest#*,}
      case $tmb_d in '' | *[!0-9]*) tmb_fail "step $tmb_i: $tmb_after is not a list of steps" ;; esac
      if [ "$tmb_d" -ge "$tmb_i" ]; then tmb_fail "step $tmb_i: it can only wait for an earlier step, not $tmb_d"; fi
      case $tmb_done in
        *" $tmb_d "*) ;;
        *) tmb_skip=$tmb_d; break ;;
      esac
    done
  fi
  if [ -n "$tmb_skip" ]; then
    printf 'step %s skipped %s\n' "$tmb_i" "$tmb_skip"
  else
    case $tmb_k in
      mkdir-ssh) tmb_mkdir_ssh ;;
      mkdir-private) tmb_mkdir_private "$tmb_a1" ;;
      replace) tmb_replace "$tmb_a1" "$tmb_a2" "$tmb_a3" "$tmb_a4" ;;
      sudo-replace) sudo -n sh -c "$tmb_sudo_replace" trustmesh "$tmb_a1" "$tmb_a2" "$tmb_a3" "$tmb_a4" ;;
      remove) tmb_remove_file "$tmb_a1" "$tmb_a2" ;;
      sudo-remove) sudo -n sh -c "$tmb_sudo_remove" trustmesh "$tmb_a1" "$tmb_a2" ;;
      chmod) tmb_chmod "$tmb_a1" "$tmb_a2" ;;
      chown) tmb_chown "$tmb_a1" "$tmb_a2" ;;
      remove-leftover) tmb_remove_leftover "$tmb_a1" ;;
    esac <"$tmb_dir/content" >"$tmb_dir/out" 2>"$tmb_dir/err"
    tmb_st=$?
    tmb_emit "step $tmb_i ran $tmb_st"
    if [ "$tmb_st" -eq 0 ]; then tmb_done="$tmb_done$tmb_i "; fi
  fi
  tmb_i=$((tmb_i + 1))
done
exec 3<&-
if [ "${1-}" != --probe ]; then tmb_fail "the step list does not end with --probe"; fi
shift
tmb_probe "$@" </dev/null >"$tmb_dir/out" 2>"$tmb_dir/err"
tmb_emit "probe $?"
printf 'TM-BATCH-END\n'
