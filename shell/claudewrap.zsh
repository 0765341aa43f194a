# claudewrap shell integration for zsh.
#
# Load it last in ~/.zshrc, after anything else that defines `claude`:
#
#     eval "$(claudewrap shell-init zsh)"
#
# or save a copy (`claudewrap shell-init zsh > ~/.claudewrap.zsh`) and source it.
#
#   claude          `claudewrap run -- ARGS`, so the usage it prints is recorded;
#                   arguments and exit status unchanged
#   claude_usage    `claudewrap usage ARGS`: the summary
#   claude_metrics  `claudewrap metrics ARGS`
#
# At the prompt, `claude` is a small sh script, the text below, which this file
# writes once to ${XDG_CACHE_HOME:-~/.cache}/claudewrap/zsh-<its SHA-256>/claude:
# zsh runs it for the word `claude` (a hashed command), so `claude` is a job of
# its own: `jobs` shows `claude ARGS` and `fg` returns claude's exit status, as
# unwrapped (a function's job has no text in zsh, and loses its status on `fg`).
# One precmd hook names the file again (zsh forgets hashed names when PATH
# changes); one preexec hook lets `command claude`, `\claude` and 'claude' on a
# line run the real binary. In scripts and `zsh -c`, `claude` is an alias for
# __claudewrap_claude, which runs the same script; no hooks.
#
# `command claude` and `\claude` run the real binary. CLAUDEWRAP_DISABLE=1 makes
# `claude` the real binary. When claudewrap is missing or cannot start, `claude`
# runs the real binary after one line of warning. An alias `claude='claude
# --flags'` or `claude='/path/to/claude'` is kept and routed through the wrapper;
# your own `claude` function is left alone. Loading this twice changes nothing.

function __claudewrap_warn {
  \builtin print -ru2 -- "claudewrap: $*"
}

# The `claude` script (no single quote in it); tests/test_shell.py checks that
# the folder name below is the start of its SHA-256.
typeset -g __claudewrap_shim_text='#!/bin/sh
# The `claude` of claudewrap for zsh, written by the zsh snippet of claudewrap
# (claudewrap shell-init zsh; docs/shell.md). zsh runs this file for the word
# `claude` (hash claude=THIS FILE), so `jobs` shows `claude ARGS` and `fg`
# returns the exit status of claude. It runs claudewrap with $CLAUDEWRAP_REPORT set
# (then `claudewrap ARGS` is `claudewrap run -- ARGS`), or the real claude
# after one line when claudewrap is missing or cannot start.
warn() {
  printf "claudewrap: %s\n" "$*" >&2
}
real() {
  trap - HUP INT QUIT TERM
  exec "${CLAUDEWRAP_CLAUDE:-claude}" "$@"
}
case ${CLAUDEWRAP_DISABLE-} in
  "" | 0) ;;
  *) real "$@" ;;
esac
cw=
ifs=$IFS
set -f
IFS=:
for dir in ${PATH-}; do
  if [ -f "${dir:-.}/claudewrap" ] && [ -x "${dir:-.}/claudewrap" ]; then
    cw=${dir:-.}/claudewrap
    break
  fi
done
IFS=$ifs
set +f
if [ -z "$cw" ]; then
  warn "not found on PATH; running claude without usage tracking"
  real "$@"
fi
# A script whose interpreter is gone (a removed virtualenv, an upgraded
# Python) cannot start: say so in one line instead of the error of the kernel.
line=
IFS= read -r line <"$cw" 2>/dev/null
case $line in
  "#!"*)
    line=${line#??}
    line=${line#"${line%%[! 	]*}"}
    line=${line%%[ 	]*}
    if [ -n "$line" ] && [ ! -x "$line" ]; then
      warn "$cw cannot start ($line is missing); running claude without usage tracking"
      real "$@"
    fi
    ;;
esac
# claudewrap creates the report, a fresh file, once it can run, and says there
# whether it ran claude (claudewrap/main.py).
report=${TMPDIR:-/tmp}/claudewrap-report.$$
n=0
while [ -e "$report" ] || [ -h "$report" ]; do
  n=$((n + 1))
  report=${TMPDIR:-/tmp}/claudewrap-report.$$.$n
done
# Signals from the terminal reach claudewrap too: wait for it to put the terminal
# back, then end as it did. (Ctrl-Z stops the whole process group of claudewrap,
# this shell with it: zsh sees its job stop.)
got=
trap "got=129" HUP
trap "got=130" INT
trap "got=131" QUIT
trap "got=143" TERM
st=0
CLAUDEWRAP_REPORT=$report "$cw" "$@" || st=$?
if [ -n "$got" ] && [ "$st" = "$got" ]; then
  sig=$((st - 128))
  trap - "$sig"
  kill -"$sig" $$
fi
# 1, 2, 126, 127 are also what a claudewrap that failed to start returns
# (Python errors, a bad config, a broken interpreter): its report says which.
# Only when claudewrap did not run claude, run it.
case $st in
  1 | 2 | 126 | 127)
    said=
    IFS= read -r said <"$report" 2>/dev/null
    if [ -e "$report" ]; then
      rm -f -- "$report"
    fi
    if [ "$said" != started ]; then
      # config: a bad config, already named in the one line of claudewrap: say no more
      if [ "$said" != config ]; then
        warn "cannot start (see: claudewrap --version); running claude without usage tracking"
      fi
      real "$@"
    fi
    ;;
esac
exit "$st"'
typeset -g __claudewrap_shim=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/claudewrap/zsh-d1db9342bf02/claude

# Write the script if it is not there yet (a new file moved into place).
function __claudewrap_shim_ready {
  \builtin emulate -L zsh
  [[ -x $__claudewrap_shim ]] && \builtin return 0
  local dir=${__claudewrap_shim:h} tmp=${__claudewrap_shim}.$$.tmp
  {
    \command mkdir -p -m 700 -- $dir &&
      \builtin print -r -- $__claudewrap_shim_text >| $tmp &&
      \command chmod 755 -- $tmp &&
      \command mv -f -- $tmp $__claudewrap_shim
  } 2>/dev/null || \command rm -f -- $tmp 2>/dev/null
  [[ -x $__claudewrap_shim ]]
}

function __claudewrap_claude {
  if [[ -x $__claudewrap_shim ]] || __claudewrap_shim_ready; then
    "$__claudewrap_shim" "$@"
  else  # no cache folder to write: the same script, from its text
    \command sh -c "$__claudewrap_shim_text" claude "$@"
  fi
}

# Before each prompt: the word `claude` runs the script (unless you have a
# `claude` function, which wins anyway).
function __claudewrap_precmd {
  if (( ! ${+functions[claude]} )) && { [[ -x $__claudewrap_shim ]] || __claudewrap_shim_ready }; then
    commands[claude]=$__claudewrap_shim
  fi
}

# A line that says `command claude`, `\claude` or a quoted claude runs the real
# binary: for that line zsh looks claude up in PATH. ($3: the line, aliases expanded.)
function __claudewrap_preexec {
  \builtin emulate -L zsh -o extendedglob
  if [[ ${3-} == (|*[^[:alnum:]_.-])(command([[:space:]]##-[^[:space:]]#)#[[:space:]]##|\\|[\'\"])claude* ]]; then
    \builtin unhash claude 2>/dev/null
  fi
  \builtin return 0
}

function __claudewrap_tool {
  \builtin emulate -L zsh
  if [[ -z ${commands[claudewrap]-} ]]; then
    __claudewrap_warn "not found on PATH; install it, or fix PATH"
    \builtin return 127
  fi
  \command claudewrap "$@"
}

function claude_usage {
  __claudewrap_tool usage "$@"
}

function claude_metrics {
  __claudewrap_tool metrics "$@"
}

function __claudewrap_init {
  \builtin emulate -L zsh -o extendedglob
  local value='' first='' note='' run=__claudewrap_claude
  integer hashed=0
  # At a prompt (not `zsh -c`, not a script): `claude` is the hashed script.
  if [[ -o interactive && -z ${ZSH_EXECUTION_STRING-} && -z ${ZSH_SCRIPT-} ]] &&
      __claudewrap_shim_ready; then
    hashed=1
    run=claude
  fi
  if (( ${+aliases[claude]} )); then
    value=${aliases[claude]}
    # ours, from an earlier load: back to the alias it came from
    value=${value/#__claudewrap_claude/claude}
    value=${value/#(#b)(CLAUDEWRAP_CLAUDE=[^ ]##) __claudewrap_claude/$match[1] claude}
    case $value in
      (claude | 'claude '* | 'command claude' | 'command claude '*)
        # claude='claude --model opus': keep the flags, go through the wrapper
        value=${value#command }
        if [[ $value == claude && $run == claude ]]; then
          \builtin unalias claude  # the hashed script is `claude`
        else
          \builtin alias claude="$run${value#claude}"
        fi
        ;;
      (CLAUDEWRAP_CLAUDE=*' claude' | CLAUDEWRAP_CLAUDE=*' claude '*)
        \builtin alias claude="${value%% *} $run${value#* claude}"
        ;;
      (*claudewrap*) hashed=0 ;; # it calls claudewrap itself
      (*)
        first=${value%% *}
        if [[ $first == */claude && $first != *[\'\"\\\;\&\|\<\>\(\)\`=]* ]]; then
          # claude='~/.claude/local/claude': that file is the real claude
          \builtin alias claude="CLAUDEWRAP_CLAUDE=$first $run${value#$first}"
        else
          hashed=0
          note="kept your alias claude='$value'; \`claude\` is not tracked (see the README)"
        fi
        ;;
    esac
  elif (( ${+functions[claude]} )); then
    hashed=0
    if [[ ${functions[claude]} != *claudewrap* ]]; then
      note="kept your own \`claude\` function; it is not tracked unless it calls __claudewrap_claude"
    fi
  elif (( ! hashed )); then
    \builtin alias claude=__claudewrap_claude
  fi
  if (( hashed )); then
    \builtin typeset -ga precmd_functions preexec_functions
    (( ${precmd_functions[(Ie)__claudewrap_precmd]} )) || precmd_functions+=(__claudewrap_precmd)
    (( ${preexec_functions[(Ie)__claudewrap_preexec]} )) || preexec_functions+=(__claudewrap_preexec)
  fi
  # Completion: `claude`'s, if compinit already ran and knows one.
  if (( ${+functions[compdef]} && ${+_comps[claude]} )); then
    compdef __claudewrap_claude=claude
  fi
  if [[ -n $note && -o interactive ]]; then
    __claudewrap_warn "$note"
  fi
}

__claudewrap_init
\builtin unfunction __claudewrap_init
