# sdt_notes.awk: the SystemTap SDT probe notes in `readelf -n` output, one
# line per note, fields separated by tabs:
#
#   provider  name  location  base  semaphore  nargs  arg1  arg2 ...
#
# Every test that reads probe notes uses this one parser: the shell tests
# (awk -F '\t' over its output), debian/tests/probe-notes (the autopkgtest
# runs in the source tree, which ships this file) and the Python tests
# (harness.probe_notes).  Run: readelf -n FILE | awk -f tests/sdt_notes.awk
#
# An argument is SIZE@OPERAND, SIZE a byte count, negative when signed (and
# with an "f" for a floating-point value).  The operand is the compiler's
# own assembler syntax and may contain spaces: arm64 writes "-4@[sp, 32]",
# so splitting "Arguments:" on blanks is wrong there.  A new argument starts
# at a word that begins with SIZE@; any other word continues the operand
# before it.  The operand forms of each Debian release architecture, as
# their gcc 12 wrote them (amd64 "8@-104(%rsp)", arm64 "-4@[sp, 32]",
# armel/armhf "8@[sp, #8]", i386 "8@72(%esp)", mips64el "8@64($sp)",
# ppc64el "-4@10", s390x "8@160(%r15)"), are proven on real notes by
# tests/static/test_sdt_notes.py.

function flush() {
	if (provider != "") {
		line = provider "\t" name "\t" location "\t" base "\t" semaphore "\t" nargs
		for (i = 1; i <= nargs; i++)
			line = line "\t" arg[i]
		print line
	}
	provider = name = location = base = semaphore = ""
	nargs = 0
}

# Each note's fields are indented by four spaces: any other line (the next
# note's owner, another section, a blank line) ends the note before it.
!/^    / { flush() }
/^    Provider: / { provider = $2 }
/^    Name: / { name = $2 }
/^    Location: / {
	for (i = 1; i < NF; i++) {
		v = $(i + 1)
		sub(/,$/, "", v)
		if ($i == "Location:") location = v
		else if ($i == "Base:") base = v
		else if ($i == "Semaphore:") semaphore = v
	}
}
/^    Arguments:/ {
	nargs = 0
	for (i = 2; i <= NF; i++) {
		if ($i ~ /^-?[0-9]+f?@/)
			arg[++nargs] = $i
		else if (nargs > 0)
			arg[nargs] = arg[nargs] " " $i
		else {
			print "sdt_notes.awk: line " NR ": an argument does not start with SIZE@: " $0 > "/dev/stderr"
			bad = 1
		}
	}
}
END {
	flush()
	if (bad) exit 1
}
