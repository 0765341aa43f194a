# claudewrap shell integration for zsh.
#
# Load it last in ~/.zshrc, after anything else that defines `claude`:
#
#     eval "$(claudewrap shell-init zsh)"
#
# or save a copy (`claudewrap shell-init zsh > ~/.claudewrap.zsh`) and source it.
#
#   claude          an alias for __claudewrap_claude: `claudewrap run -- ARGS`, so the
#                   usage it prints is recorded; arguments and exit status unchanged
#   claude_usage    `claudewrap usage ARGS`: the summary
#   claude_metrics  `claudewrap metrics ARGS`
#
# `command claude` and `\claude` run the real binary. CLAUDEWRAP_DISABLE=1 makes
# `claude` the real binary. When claudewrap is missing or cannot start, `claude`
# runs the real binary after one line of warning. An alias `claude='claude
# --flags'` or `claude='/path/to/claude'` is kept and routed through the wrapper;
# your own `claude` function is left alone. Loading this twice changes nothing;
# it adds no precmd/preexec hooks.

function __claudewrap_warn {
  \builtin print -ru2 -- "claudewrap: $*"
}

# The real claude: $CLAUDEWRAP_CLAUDE (set by a rewritten path alias) or PATH's.
function __claudewrap_real {
  \command "${CLAUDEWRAP_CLAUDE:-claude}" "$@"
}

function __claudewrap_claude {
  \builtin emulate -L zsh
  local cw='' line='' said='' report=''
  local -a words
  integer st=0
  if [[ -n ${CLAUDEWRAP_DISABLE-} && ${CLAUDEWRAP_DISABLE-} != 0 ]]; then
    __claudewrap_real "$@"
    \builtin return
  fi
  cw=${commands[claudewrap]-}
  if [[ -z $cw ]]; then
    \builtin rehash 2>/dev/null
    cw=${commands[claudewrap]-}
  fi
  if [[ -z $cw ]]; then
    __claudewrap_warn "not found on PATH; running claude without usage tracking"
    __claudewrap_real "$@"
    \builtin return
  fi
  # A script whose interpreter is gone (a removed virtualenv, an upgraded
  # Python) cannot start: say so in one line instead of the kernel's error.
  IFS= \builtin read -r line <"$cw" 2>/dev/null
  if [[ $line == '#!'* ]]; then
    words=(${=line#??})
    if [[ -n ${words[1]-} && ! -x ${words[1]} ]]; then
      __claudewrap_warn "$cw cannot start (${words[1]} is missing); running claude without usage tracking"
      __claudewrap_real "$@"
      \builtin return
    fi
  fi
  # claudewrap creates $CLAUDEWRAP_REPORT, a fresh file, once it can run, and
  # says there whether it ran claude (see claudewrap/main.py): `claudewrap ARGS`
  # with it set is `claudewrap run -- ARGS`.
  report=${TMPDIR:-/tmp}/claudewrap-report.$$.$RANDOM$RANDOM
  CLAUDEWRAP_REPORT=$report "$cw" "$@" || st=$?
  # 1, 2, 126, 127 are also what a claudewrap that failed to start returns
  # (Python errors, a bad config, a broken interpreter): its report says which.
  # Only when claudewrap did not run claude, run it.
  if (( st == 1 || st == 2 || st == 126 || st == 127 )); then
    IFS= \builtin read -r said <"$report" 2>/dev/null
    \command rm -f -- "$report"
    if [[ $said != started ]]; then
      # config: a bad config, already named in claudewrap's one line: say no more
      [[ $said == config ]] ||
        __claudewrap_warn "cannot start (see: claudewrap --version); running claude without usage tracking"
      __claudewrap_real "$@"
      \builtin return
    fi
  elif (( st == 148 )); then
    \command rm -f -- "$report"  # stopped (Ctrl-Z): no one will read it
  fi
  \builtin return $st
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
  \builtin emulate -L zsh
  local value='' first='' note=''
  if (( ${+aliases[claude]} )); then
    value=${aliases[claude]}
    case $value in
      (*claudewrap*) ;; # ours (loaded before), or it calls claudewrap itself
      (claude | 'claude '* | 'command claude' | 'command claude '*)
        # claude='claude --model opus': keep the flags, go through the wrapper
        value=${value#command }
        \builtin alias claude="__claudewrap_claude${value#claude}"
        ;;
      (*)
        first=${value%% *}
        if [[ $first == */claude && $first != *[\'\"\\\;\&\|\<\>\(\)\`=]* ]]; then
          # claude='~/.claude/local/claude': that file is the real claude
          \builtin alias claude="CLAUDEWRAP_CLAUDE=$first __claudewrap_claude${value#$first}"
        else
          note="kept your alias claude='$value'; \`claude\` is not tracked (see the README)"
        fi
        ;;
    esac
  elif (( ${+functions[claude]} )); then
    if [[ ${functions[claude]} != *claudewrap* ]]; then
      note="kept your own \`claude\` function; it is not tracked unless it calls __claudewrap_claude"
    fi
  else
    \builtin alias claude=__claudewrap_claude
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
