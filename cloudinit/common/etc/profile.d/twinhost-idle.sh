# twinhost: close login shells idle at the prompt for 15 minutes (a forgotten root shell is an open
# door); a running command is never cut. Read-only, so a session cannot switch it off.
TMOUT=900
readonly TMOUT
export TMOUT
