#!/bin/sh
# t_fsserver_listen.sh's checks against Google's Firestore emulator; skipped
# (77) where the emulator is not installed.
MODE=emulator
. "$(dirname "$0")/t_fsserver_listen.sh"
