#!/usr/bin/env bash
# A multi-host run on PostgreSQL (example; adapt hosts, paths and the database).
#
# 1. Once, on the database host:  createdb dydit && createuser dydit -P   (and allow the workers' hosts in pg_hba.conf)
# 2. The run's output directory (and the weights) must be on a filesystem every host mounts at the same path.
# 3. Keep the password out of command lines and logs: workers read the ledger from the environment.
set -euo pipefail
export DYDIT_EVAL_LEDGER="postgres://dydit:${PGPASSWORD:?set PGPASSWORD}@db.example.org:5432/dydit"

# On the coordinating host: plans the shards, runs its own local workers, shows progress, merges and evaluates.
# Re-running the same command resumes.
#   dydit-eval run --config configs/runs/fid50k-256.json --workers 8
#
# On every other host (one worker per GPU; a CPU host runs one worker with all cores):
#   for gpu in 0 1 2 3 4 5 6 7; do dydit-eval worker --device cuda:$gpu & done; wait
#
# Workers exit when no shard is left; `run` merges once every shard is done. If `run` was not used (workers only),
# merge each run by hand:
#   dydit-eval merge --run runs/fid50k-256/dit-xl2
dydit-eval "$@"
