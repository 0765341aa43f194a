# claudewrap shell integration for bash (3.2 and later).
#
# Load it last in ~/.bashrc, after anything else that defines `claude`:
#
#     eval "$(claudewrap shell-init bash)"
#
# or save a copy (`claudewrap shell-init bash > ~/.claudewrap.bash`) and source it.
#
#   claude          an alias for __claudewrap_claude: `claudewrap run -- ARGS`, so the
#                   usage it prints is recorded; arguments and exit status unchanged
#   claude_usage    `claudewrap usage ARGS`: the summary
#   claude_metrics  `claudewrap metrics ARGS`
#
# `command claude` and `\claude` run the real binary, and so do scripts (they do
# not expand aliases). CLAUDEWRAP_DISABLE=1 makes `claude` the real binary. When
# claudewrap is missing or cannot start, `claude` runs the real binary after one
# line of warning. An alias `claude='claude --flags'` or `claude='/path/to/claude'`
# is kept and routed through the wrapper; your own `claude` function is left
# alone. Loading this twice changes nothing; it adds no prompt hooks.

__claudewrap_warn() {
  \builtin printf 'claudewrap: %s\n' "$*" >&2
}

# The real claude: $CLAUDEWRAP_CLAUDE (set by a rewritten path alias) or PATH's.
__claudewrap_real() {
  \command "${CLAUDEWRAP_CLAUDE:-claude}" ${1+"$@"}
}

# Run claudewrap (at path $1) as `claude ARGS`: `jobs` and `fg` then show
# `claude ARGS` as typed. $CLAUDEWRAP_REPORT names a fresh file that claudewrap
# creates once it can run (see `claudewrap/main.py`); the caller reads it.
__claudewrap_run() {
  \builtin local __claudewrap_path=$1 __claudewrap_aliases=0 __claudewrap_rc=0 __claudewrap_e=0
  \builtin shift
  if \builtin declare -F claude >/dev/null 2>&1; then
    # a function of yours named claude would run instead of the hashed path
    "$__claudewrap_path" ${1+"$@"} || __claudewrap_rc=$?
    \builtin return "$__claudewrap_rc"
  fi
  # The word `claude` must reach the hash table, not the alias.
  if \builtin shopt -q expand_aliases; then
    __claudewrap_aliases=1
    \builtin shopt -u expand_aliases
  fi
  # set -e would end the shell inside eval, `||` or not (bash 5.2)
  case $- in
    *e*)
      __claudewrap_e=1
      \builtin set +e
      ;;
  esac
  \builtin hash -p "$__claudewrap_path" claude
  if [ $# -gt 0 ]; then
    \builtin eval "claude$(\builtin printf ' %q' "$@")"
  else
    \builtin eval claude
  fi
  __claudewrap_rc=$?
  \builtin hash -d claude 2>/dev/null
  if [ "$__claudewrap_e" = 1 ]; then
    \builtin set -e
  fi
  if [ "$__claudewrap_aliases" = 1 ]; then
    \builtin shopt -s expand_aliases
  fi
  \builtin return "$__claudewrap_rc"
}

__claudewrap_claude() {
  \builtin local __claudewrap_cw='' __claudewrap_line='' __claudewrap_status=0 __claudewrap_said=''
  case ${CLAUDEWRAP_DISABLE-} in
    '' | 0) ;;
    *)
      __claudewrap_real ${1+"$@"}
      \builtin return
      ;;
  esac
  if ! __claudewrap_cw=$(\builtin type -P claudewrap 2>/dev/null) || [ -z "$__claudewrap_cw" ]; then
    __claudewrap_warn "not found on PATH; running claude without usage tracking"
    __claudewrap_real ${1+"$@"}
    \builtin return
  fi
  # A script whose interpreter is gone (a removed virtualenv, an upgraded
  # Python) cannot start: say so in one line instead of the kernel's error.
  IFS= \builtin read -r __claudewrap_line <"$__claudewrap_cw" 2>/dev/null || :
  case $__claudewrap_line in
    '#!'*)
      __claudewrap_line=${__claudewrap_line#??}
      __claudewrap_line=${__claudewrap_line#"${__claudewrap_line%%[! ]*}"}
      __claudewrap_line=${__claudewrap_line%%[ 	]*}
      if [ -n "$__claudewrap_line" ] && [ ! -x "$__claudewrap_line" ]; then
        __claudewrap_warn "$__claudewrap_cw cannot start ($__claudewrap_line is missing); running claude without usage tracking"
        __claudewrap_real ${1+"$@"}
        \builtin return
      fi
      ;;
  esac
  \builtin local -x CLAUDEWRAP_REPORT="${TMPDIR:-/tmp}/claudewrap-report.$$.$RANDOM$RANDOM"
  __claudewrap_run "$__claudewrap_cw" ${1+"$@"} || __claudewrap_status=$?
  # 1, 2, 126, 127 are also what a claudewrap that failed to start returns
  # (Python errors, a bad config, a broken interpreter): its report says which.
  # Only when claudewrap did not run claude, run it.
  case $__claudewrap_status in
    1 | 2 | 126 | 127)
      IFS= \builtin read -r __claudewrap_said <"$CLAUDEWRAP_REPORT" 2>/dev/null || :
      \command rm -f -- "$CLAUDEWRAP_REPORT"
      \builtin unset CLAUDEWRAP_REPORT
      case $__claudewrap_said in
        started) ;;
        *)
          # config: a bad config, already named in claudewrap's one line: say no more
          if [ "$__claudewrap_said" != config ]; then
            __claudewrap_warn "cannot start (see: claudewrap --version); running claude without usage tracking"
          fi
          __claudewrap_real ${1+"$@"}
          \builtin return
          ;;
      esac
      ;;
    148) # stopped (Ctrl-Z): bash goes on without it; no one will read the report
      \command rm -f -- "$CLAUDEWRAP_REPORT"
      ;;
  esac
  \builtin return "$__claudewrap_status"
}

__claudewrap_tool() {
  if ! \builtin type -P claudewrap >/dev/null 2>&1; then
    __claudewrap_warn "not found on PATH; install it, or fix PATH"
    \builtin return 127
  fi
  \command claudewrap ${1+"$@"}
}

function claude_usage {
  __claudewrap_tool usage ${1+"$@"}
}

function claude_metrics {
  __claudewrap_tool metrics ${1+"$@"}
}

__claudewrap_init() {
  \builtin local __claudewrap_def='' __claudewrap_value='' __claudewrap_first='' __claudewrap_note=''
  if __claudewrap_def=$(\builtin alias claude 2>/dev/null); then
    # `alias` prints: alias claude='...' (quoted for eval)
    \builtin eval "__claudewrap_value=${__claudewrap_def#alias claude=}"
    case $__claudewrap_value in
      *claudewrap*) ;; # ours (loaded before), or it calls claudewrap itself
      claude | 'claude '* | 'command claude' | 'command claude '*)
        # claude='claude --model opus': keep the flags, go through the wrapper
        __claudewrap_value=${__claudewrap_value#command }
        \builtin alias claude="__claudewrap_claude${__claudewrap_value#claude}"
        ;;
      *)
        __claudewrap_first=${__claudewrap_value%% *}
        case $__claudewrap_first in
          *[\'\"\\\;\&\|\<\>\(\)\`=]*) __claudewrap_first='' ;;
          */claude) ;;
          *) __claudewrap_first='' ;;
        esac
        if [ -n "$__claudewrap_first" ]; then
          # claude='~/.claude/local/claude': that file is the real claude
          \builtin alias claude="CLAUDEWRAP_CLAUDE=$__claudewrap_first __claudewrap_claude${__claudewrap_value#"$__claudewrap_first"}"
        else
          __claudewrap_note="kept your alias claude='$__claudewrap_value'; \`claude\` is not tracked (see the README)"
        fi
        ;;
    esac
  elif \builtin declare -F claude >/dev/null 2>&1; then
    case $(\builtin declare -f claude) in
      *claudewrap*) ;; # it calls claudewrap itself
      *) __claudewrap_note="kept your own \`claude\` function; it is not tracked unless it calls __claudewrap_claude" ;;
    esac
  else
    \builtin alias claude=__claudewrap_claude
  fi
  case $- in
    *i*)
      if [ -n "$__claudewrap_note" ]; then
        __claudewrap_warn "$__claudewrap_note"
      fi
      ;;
  esac
}

__claudewrap_init
\builtin unset -f __claudewrap_init
