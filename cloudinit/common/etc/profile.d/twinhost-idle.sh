# A login shell idle at its prompt for 15 minutes exits (Lynis SHLL-6220); readonly so it stays.
readonly TMOUT=900
export TMOUT
