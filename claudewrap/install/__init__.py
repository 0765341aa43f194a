"""Setting claudewrap up: the shell and tmux integration, `setup` and `doctor`."""
