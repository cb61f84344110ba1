#!/usr/bin/env bash
# test.sh is THE way to test Gatehouse, on a laptop and in CI alike.
#
#   ./scripts/test.sh                            vet, staticcheck and every test
#   ./scripts/test.sh ./internal/store/...       the same, for these packages only
#   ./scripts/test.sh -run TestLogin ./internal/auth/...
#
# Arguments go to `go test` in place of ./...; the package patterns among them
# (those starting with ./ or naming this module) also limit vet and
# staticcheck. With flags but no package pattern, ./... is still tested.
#
# It installs missing Debian packages the tests need (as root, or with
# passwordless sudo), starts one throwaway PostgreSQL cluster for the whole run
# and exports GATEHOUSE_TEST_POSTGRES for internal/testpg (set it yourself to
# use a cluster of your own instead), then runs every step even if one fails,
# prints a summary and exits non-zero if anything failed.
#
# Environment:
#   GATEHOUSE_TEST_POSTGRES  use this cluster instead of starting one
#   GATEHOUSE_TEST_JSON      also keep the `go test -json` stream in this file
#   GATEHOUSE_TEST_NO_APT=1  never install packages
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the tests need. Add to this list when a test needs a new
# tool, e.g. slapd and ldap-utils (LDAP directory tests) or chromium (web UI).
APT_PACKAGES=(
	curl             # client compatibility tests
	openssl          # certificate tests
	python3-requests # client compatibility tests
	haproxy          # PROXY protocol tests
	gcc libc6-dev    # go test -race needs cgo
	slapd ldap-utils # LDAP directory tests (internal/directory/ldaptest runs its own slapd)
	rsyslog rsyslog-openssl # audit export to syslog over TLS (internal/auditexport runs its own rsyslogd)
	freeradius       # RADIUS second-factor tests (internal/mfa/radiustest runs its own freeradius)
	chromium         # web console browser tests (internal/console, chromedp)
	iproute2         # extender tests: ip netns and veth pairs (internal/extender)
	nodejs           # the README walk-through's Node client (internal/e2e TestREADMEWalkthrough)
	systemd          # systemd-analyze verify/security of packaging/systemd/gatehouse.service
	python3-aiosmtpd # approval notifications by e-mail (internal/notify/smtptest runs its own aiosmtpd)
)
# kubectl for the walk-through: Debian's kubernetes-client, unless some kubectl is installed already (another
# package's /usr/bin/kubectl would conflict with it).
command -v kubectl >/dev/null || APT_PACKAGES+=(kubernetes-client)

# staticcheck 2026.2.2, the newest release when Go 1.26 was current. Bump it
# when go.mod's go line moves to a Go release it does not know yet
# (`go list -m -versions honnef.co/go/tools` lists the releases).
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

GO_TEST_FLAGS=(-race -count=1 -timeout 30m)

log() { printf '\n== %s\n' "$*"; }

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	PATH=/usr/local/go/bin:$PATH
fi

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-test.XXXXXX")
PG_DIR=
cleanup() {
	if [[ -n $PG_DIR ]]; then
		as_postgres "$PG_BIN/pg_ctl" stop -s -m immediate -D "$PG_DIR/data" >/dev/null 2>&1 || true
		rm -rf "$PG_DIR"
	fi
	rm -rf "$RUN_DIR"
}
trap cleanup EXIT
# Turn signals into an exit so the EXIT trap runs and the cluster goes away.
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Debian packages ---------------------------------------------------------

# pg_bin_dir prints the directory holding initdb and pg_ctl, if any. Debian's
# postgresql package keeps them in a versioned directory off PATH.
pg_bin_dir() {
	local p d
	if p=$(command -v initdb); then
		dirname "$(readlink -f "$p")"
		return
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
		if [[ -x $d/initdb ]]; then
			echo "$d"
			return
		fi
	done
	return 1
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_packages() {
	local wanted=("${APT_PACKAGES[@]}") missing=() p sudo=()
	if [[ -z ${GATEHOUSE_TEST_POSTGRES:-} ]] && ! pg_bin_dir >/dev/null; then
		wanted+=(postgresql)
	fi
	if ! command -v dpkg-query >/dev/null; then
		echo "not a Debian system: make sure these are installed: ${wanted[*]}"
		return
	fi
	for p in "${wanted[@]}"; do
		installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	if [[ ${GATEHOUSE_TEST_NO_APT:-} == 1 ]]; then
		echo "GATEHOUSE_TEST_NO_APT=1: not installing missing packages: ${missing[*]}"
		return
	fi
	if ((EUID != 0)); then
		if ! sudo -n true 2>/dev/null; then
			echo "warning: not root and no passwordless sudo; tests needing these may fail: ${missing[*]}"
			return
		fi
		sudo=(sudo -n)
	fi
	log "installing ${missing[*]}"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$RUN_DIR/apt.log" 2>&1 ||
		{ cat "$RUN_DIR/apt.log"; echo "apt-get install failed" >&2; exit 1; }
}

# --- PostgreSQL --------------------------------------------------------------

# as_postgres runs a command as the postgres OS user when we are root, since
# initdb and postgres refuse to run as root.
as_postgres() {
	if ((EUID != 0)); then
		"$@"
	elif command -v runuser >/dev/null; then
		runuser -u postgres -- "$@"
	else
		su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
	fi
}

start_postgres() {
	PG_BIN=$(pg_bin_dir) || { echo "PostgreSQL server binaries (initdb) not found" >&2; exit 1; }
	local tmp=${TMPDIR:-/tmp} port attempt
	if ((EUID == 0)); then
		id postgres >/dev/null 2>&1 || { echo "running as root needs a postgres OS user" >&2; exit 1; }
		tmp=/tmp # the postgres user must be able to reach it; $TMPDIR may not allow that
	fi
	PG_DIR=$(mktemp -d "$tmp/gatehouse-pg.XXXXXX")
	if ((EUID == 0)); then
		chown postgres: "$PG_DIR"
	fi
	as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C -N \
		>"$RUN_DIR/initdb.log" 2>&1 || { cat "$RUN_DIR/initdb.log"; exit 1; }
	# A random port can be taken; skip ones that answer and retry a failed start.
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		if as_postgres "$PG_BIN/pg_ctl" start -w -t 60 -s -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
			-o "-k '$PG_DIR' -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
			>"$RUN_DIR/pg_ctl.log" 2>&1; then
			export GATEHOUSE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$port ($PG_DIR)"
			return
		fi
	done
	cat "$RUN_DIR/pg_ctl.log" "$PG_DIR/postgres.log" 2>/dev/null
	echo "could not start PostgreSQL" >&2
	exit 1
}

# --- run ---------------------------------------------------------------------

PKGS=()
skip_value=0
for a in "$@"; do
	if ((skip_value)); then
		skip_value=0
		continue
	fi
	case $a in
	# go test flags whose value is the next argument: `-run .` names no package.
	-run|-skip|-bench|-benchtime|-count|-cpu|-parallel|-p|-timeout|-tags|-list|-shuffle|-fuzz|-fuzztime|\
	-covermode|-coverpkg|-*profile|-o|-exec|-vet|-outputdir|-ldflags|-gcflags|-asmflags|-mod|-C)
		skip_value=1 ;;
	.|./*|..|../*|github.com/gatehouse-dev/gatehouse*) PKGS+=("$a") ;;
	esac
done
TEST_ARGS=("$@")
if ((${#PKGS[@]} == 0)); then
	PKGS=(./...)
	TEST_ARGS+=(./...)
fi

go version
install_packages
if [[ -n ${GATEHOUSE_TEST_POSTGRES:-} ]]; then
	echo "PostgreSQL from GATEHOUSE_TEST_POSTGRES"
else
	start_postgres
fi

declare -A RESULT
FAILED=0

log "gofmt -l"
# A file gofmt would change fails the run: vet and staticcheck do not look at formatting.
GOFILES=$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')
UNFORMATTED=$(gofmt -l $GOFILES)
if [[ -z $UNFORMATTED ]]; then RESULT[gofmt]=ok; else printf '%s\n' "$UNFORMATTED"; RESULT[gofmt]=FAIL; FAILED=1; fi

log "go vet ${PKGS[*]}"
if go vet "${PKGS[@]}"; then RESULT[vet]=ok; else RESULT[vet]=FAIL; FAILED=1; fi

log "staticcheck ${PKGS[*]}"
if go run "$STATICCHECK" "${PKGS[@]}"; then RESULT[staticcheck]=ok; else RESULT[staticcheck]=FAIL; FAILED=1; fi

log "go test ${GO_TEST_FLAGS[*]} ${TEST_ARGS[*]}"
go build -o "$RUN_DIR/testsummary" ./scripts/testsummary
JSON=${GATEHOUSE_TEST_JSON:-$RUN_DIR/test.json}
set +e
go test -json "${GO_TEST_FLAGS[@]}" "${TEST_ARGS[@]}" | tee "$JSON" | "$RUN_DIR/testsummary" | tee "$RUN_DIR/summary.txt"
STATUS=("${PIPESTATUS[@]}")
set -e
COUNTS=$(tail -n 1 "$RUN_DIR/summary.txt")
if ((STATUS[0] == 0 && STATUS[2] == 0)); then
	RESULT[test]="ok ($COUNTS)"
else
	RESULT[test]="FAIL ($COUNTS; go test exit ${STATUS[0]})"
	FAILED=1
fi

log summary
printf '%-12s %s\n' gofmt "${RESULT[gofmt]}" vet "${RESULT[vet]}" staticcheck "${RESULT[staticcheck]}" test "${RESULT[test]}"
if ((FAILED)); then
	echo "FAIL"
	exit 1
fi
echo "PASS"
