#!/usr/bin/env bash
# Prints where the shared fixtures are (../shared/fixtures): beside this checkout, or, for a
# clone made elsewhere (CI's `git clone . /tmp/…`), beside the repository it was cloned from.
here=$(cd "$(dirname "$0")/.." && pwd)
origin=$(git -C "$here" config --get remote.origin.url 2>/dev/null || true)
for root in "$here" "${origin#file://}"; do
  if [ -n "$root" ] && [ -d "$root/../shared/fixtures" ]; then
    (cd "$root/../shared/fixtures" && pwd)
    exit 0
  fi
done
echo "$here/../shared/fixtures"
