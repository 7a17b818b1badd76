# provider_args.awk: the argument sizes that a provider file's probes must
# show in their SDT notes, one line per probe, fields separated by tabs:
#
#   provider  name  nargs  size1 size2 ...  type1;type2;...
#
# A size is what <sys/sdt.h> writes before the "@" of an argument: the
# argument's byte count, negative for a signed type (pid_t is an int on
# every Linux architecture).  Pointers (and long) take the data model's
# size, given as -v ptr=8 (LP64) or -v ptr=4 (ILP32).
# Run: awk -v ptr=8 -f tests/provider_args.awk dtrace/mod_usdt.d
# A type this file does not know is an error (exit 1), not a guess.

function size_of(type, t) {
	t = type
	if (t ~ /\*/) return ptr
	gsub(/^[ \t]*(const[ \t]+)?|[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*$/, "", t)
	if (t ~ /^u?int64_t$/) return (t ~ /^u/ ? "" : "-") 8
	if (t ~ /^u?int32_t$/) return (t ~ /^u/ ? "" : "-") 4
	if (t ~ /^u?int16_t$/) return (t ~ /^u/ ? "" : "-") 2
	if (t ~ /^u?int8_t$/) return (t ~ /^u/ ? "" : "-") 1
	if (t == "int" || t == "signed int" || t == "pid_t") return -4
	if (t == "unsigned" || t == "unsigned int") return 4
	if (t == "long" || t == "signed long") return -ptr
	if (t == "unsigned long" || t == "size_t" || t == "uintptr_t") return ptr
	printf "provider_args.awk: %s: probe %s: unknown argument type \"%s\"\n",
		FILENAME, probe, type > "/dev/stderr"
	bad = 1
	return "?"
}

BEGIN {
	if (ptr != 4 && ptr != 8) {
		print "provider_args.awk: set -v ptr=4 or -v ptr=8 (the pointer size)" > "/dev/stderr"
		bad = 1
		exit 1
	}
}
# The whole file as one string, comments removed, so that a declaration may
# span lines.
{ text = text " " $0 }
END {
	if (bad) exit 1
	while (match(text, /\/\*/)) {
		rest = substr(text, RSTART + 2)
		end = index(rest, "*/")
		text = substr(text, 1, RSTART - 1) " " (end ? substr(rest, end + 2) : "")
	}
	while (match(text, /provider[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*\{/)) {
		head = substr(text, RSTART, RLENGTH)
		text = substr(text, RSTART + RLENGTH)
		sub(/^provider[ \t]+/, "", head)
		sub(/[ \t]*\{$/, "", head)
		body = substr(text, 1, index(text, "}") - 1)
		while (match(body, /probe[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*\([^)]*\)/)) {
			decl = substr(body, RSTART, RLENGTH)
			body = substr(body, RSTART + RLENGTH)
			probe = decl
			sub(/^probe[ \t]+/, "", probe)
			sub(/[ \t]*\(.*/, "", probe)
			args = decl
			sub(/^[^(]*\(/, "", args)
			sub(/\)$/, "", args)
			n = 0
			sizes = types = ""
			if (args !~ /^[ \t]*(void)?[ \t]*$/) {
				n = split(args, a, ",")
				for (i = 1; i <= n; i++) {
					sizes = sizes (i > 1 ? " " : "") size_of(a[i])
					t = a[i]
					gsub(/^[ \t]+|[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*$/, "", t)
					types = types (i > 1 ? ";" : "") t
				}
			}
			print head "\t" probe "\t" n "\t" sizes "\t" types
		}
	}
	if (bad) exit 1
}
