# Two entry points for a fresh Debian machine: `make demo` and `make test`.
# Both install what is missing first and are safe to run again.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PKGS := strongswan-charon strongswan-swanctl libcharon-extra-plugins \
	libcharon-extauth-plugins freeradius \
	libstrongswan-standard-plugins libstrongswan-extra-plugins \
	iproute2 iputils-ping tcpdump libyang2-dev libyang2-tools openssh-client \
	python3 python3-venv python3-dev gcc libffi-dev pkg-config procps \
	systemd
# the kernel harness (tests/kernel/vm.py): QEMU, busybox for its initramfs, kmod for depmod
KERNEL_APT_PKGS := qemu-system-x86 busybox-static kmod
YANG_PATH = $(shell $(PY) -c 'import sys; print(sys.prefix)')/share/yang/modules

.PHONY: deps apt venv lint-yang lint test demo clean kernel-deps test-kernel bench

deps: apt venv

apt:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@# Debian's freeradius enables (and under systemd starts) its system service: the gateway
	@# runs no RADIUS server (tests start their own), so keep it stopped and disabled
	@if dpkg-query -W -f='$${Status}' freeradius 2>/dev/null | grep -q "ok installed"; then \
	  if [ -d /run/systemd/system ]; then systemctl disable --now --quiet freeradius.service; \
	  else systemctl disable --quiet freeradius.service 2>/dev/null \
	    || update-rc.d freeradius disable >/dev/null 2>&1 || true; \
	    if [ -s /run/freeradius/freeradius.pid ]; then /etc/init.d/freeradius stop; fi; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: apt $(VENV)/.installed

lint-yang: venv
	$(VENV)/bin/pyang --lint -p $(YANG_PATH)/ietf:$(YANG_PATH)/iana yang/*.yang
	yanglint -p $(YANG_PATH)/ietf -p $(YANG_PATH)/iana yang/*.yang

lint: venv lint-yang
	$(VENV)/bin/ruff check nf northbound southbound tools tests

test: deps lint kernel-deps
	$(VENV)/bin/pytest -v -rs --durations=30 tests

# Debian's stock kernel (linux-image-amd64, downloaded and unpacked once into
# /var/cache/ipsec-nf-test) booted under QEMU runs the tests that need kernel ESP
kernel-deps: venv
	@missing=""; for p in $(KERNEL_APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $$missing; \
	fi
	$(PY) -m tests.kernel.vm prepare

test-kernel: deps kernel-deps
	$(VENV)/bin/pytest -v -rs tests/kernel

# The benchmark suite (docs/benchmarks.md, as root, about an hour): each script prints its
# tables (min/median/max, comparisons with swanctl interleaved in the same run) and the load,
# and writes bench/results/<name>.json. A smoke run of each is part of `make test`
# (tests/integration/test_bench_smoke.py).
bench: deps
	@echo "bench started $$(date -u +%FT%TZ), load average $$(cut -d' ' -f1-3 /proc/loadavg), $$(nproc) CPUs"
	$(PY) bench/commit_latency.py --sizes 10,1000,10000 --repeat 20
	$(PY) bench/netconf_commit.py --sizes 10,1000,10000 --repeat 30
	$(PY) bench/reads.py --sizes 10,1000,10000 --repeat 20 --cycles 20 --cycle-vpns 10000
	$(PY) bench/readback.py --vpns 1000,10000 --repeat 5
	$(PY) bench/bulk_load.py --sizes 1000 --cycles 10 --json bench/results/bulk_load-1000.json
	$(PY) bench/bulk_load.py --sizes 10000 --cycles 3 --json bench/results/bulk_load-10000.json
	$(PY) bench/state_reads.py --sizes 1,100,1000 --rounds 10
	$(PY) bench/tunnel_bringup.py --sizes 100,1000 --rounds 3
	@echo "bench ended $$(date -u +%FT%TZ), load average $$(cut -d' ' -f1-3 /proc/loadavg)"

demo: deps
	$(PY) -m tools.demo

clean:
	rm -rf $(VENV) *.egg-info
