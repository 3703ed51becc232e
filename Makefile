# Two entry points: `make serve` and `make test`. Each sets up .venv on first use.
.PHONY: serve serve-vllm test bench clean
VENV_STAMP := .venv/.setup-stamp

$(VENV_STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh test
	touch $(VENV_STAMP)

serve: $(VENV_STAMP)
	.venv/bin/cachepoint serve $(ARGS)

serve-vllm: $(VENV_STAMP)
	bash scripts/setup-vllm.sh
	.venv/bin/cachepoint serve --engine vllm $(ARGS)

test: $(VENV_STAMP)
	bash scripts/ensure-chromium.sh
	bash scripts/setup-vllm.sh
	bash scripts/services.sh postgres redis >/dev/null
	.venv/bin/ruff check src tests bench examples conftest.py
	.venv/bin/mypy
	.venv/bin/python -m pytest -q $(ARGS)

bench: $(VENV_STAMP)
	.venv/bin/python bench/ttft.py $(ARGS)

clean:
	rm -rf .venv
