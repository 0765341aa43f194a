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

# Exit status 0 when claudewrap (at path $1) can start a command and read
# the user's patterns: what `claude` needs from it; 1 when it cannot start;
# 2 when the pattern config is invalid (`claudewrap run` said so in one line).
# No output, no side effects.
__claudewrap_works() {
  \builtin local __claudewrap_true
  __claudewrap_true=$(\builtin type -P true) || __claudewrap_true=/bin/true
  "$1" run --no-capture --claude "$__claudewrap_true" -- </dev/null >/dev/null 2>&1 ||
    \builtin return 1
  "$1" parse probe </dev/null >/dev/null 2>&1 || \builtin return 2
}

__claudewrap_claude() {
  \builtin local __claudewrap_cw='' __claudewrap_line='' __claudewrap_status=0 __claudewrap_why=0
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
  "$__claudewrap_cw" run -- ${1+"$@"} || __claudewrap_status=$?
  # 1, 2, 126, 127 are also what a claudewrap that failed to start returns
  # (Python errors, a bad config, a broken interpreter). Only when claudewrap
  # cannot run a command now did claude not run: then, and only then, run it.
  case $__claudewrap_status in
    1 | 2 | 126 | 127)
      __claudewrap_works "$__claudewrap_cw" || __claudewrap_why=$?
      if [ "$__claudewrap_why" -ne 0 ]; then
        # 2: a bad config, already named in claudewrap's one line: say no more
        if [ "$__claudewrap_why" -ne 2 ]; then
          __claudewrap_warn "cannot start (see: claudewrap --version); running claude without usage tracking"
        fi
        __claudewrap_real ${1+"$@"}
        \builtin return
      fi
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
