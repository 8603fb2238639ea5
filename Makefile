.PHONY: setup run test sample bench lint
setup:  ; scripts/setup
run:    ; scripts/run
test:   ; scripts/test
sample: ; scripts/sample
lint:   ; .venv/bin/ruff check callrouter tests bench && .venv/bin/mypy callrouter
