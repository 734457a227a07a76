# Shortcuts for the scripts in scripts/ (each installs what is missing).
.PHONY: demo test bench soak

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

bench:
	./scripts/bench.sh

soak:
	./scripts/soak.sh
