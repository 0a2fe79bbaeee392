# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

# The browser of the end-to-end tests: Debian's Chromium (never Playwright's download).
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test lint bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	$(eval SUDO := $(if $(filter 0,$(shell id -u)),,sudo))
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	  || ($(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# The web app on the embedded SQLite with the demo district; solve jobs run in-process.
run: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m flask --app web bastion bootstrap
	env -u DATABASE_URL -u REDIS_URL $(PY) -m flask --app web run --host 127.0.0.1 --port 5000

test: $(STAMP) $(CHROMIUM)
	$(PY) -m ruff check solver scheduler web tests bench
	$(PY) -m mypy solver scheduler web
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m solver bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
