#!/bin/bash
# CLI start-up, alternating in one run: bare `node -e 0`, this checkout's CLI, and another build
# (OLD=/path/to/other/bin/beitseg.js, e.g. a checkout before lazy loading). Medians of 5.
OLD=${OLD:-/work/main/bin/beitseg.js}
ms() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; local e=$(date +%s%N); echo $(( (e-s)/1000000 )); }
for what in "--version" "--help" "print-config test/fixtures/tiny_public_config.json" "predict --config x --mode foo a.png"; do
  n=(); a=(); b=()
  for i in 1 2 3 4 5; do
    n+=($(ms node -e 0)); a+=($(ms node bin/beitseg.js $what)); b+=($(ms node "$OLD" $what))
  done
  med() { printf "%s\n" "$@" | sort -n | sed -n 3p; }
  echo "$what: node $(med ${n[@]}) ms | new $(med ${a[@]}) ms | old $(med ${b[@]}) ms (medians of 5)"
done
