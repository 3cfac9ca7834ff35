#!/usr/bin/perl
# Peer decoder for the ATR differential test (protocols/tests/atr_differential.rs).
#
# Runs pcsc-tools' own ATR_analysis code on many ATRs in one process:
# the script is compiled once, its top-level analysis wrapped in a sub, its
# `exit` calls turned into exceptions, and its output parsed into one JSON
# object per input line. Starting Perl 8000 times would take minutes.
#
# stdin: one ATR per line as hex (no spaces). stdout: one JSON object per line:
#   atr, protocols (T of every TD, in order), fi/di (Table 7/8 value or "RFU",
#   null when TA1 absent), n (TC1 or null), ifsc/bwi/cwi (first TAi/TBi for
#   T=1 at i>2 or null), edc ("CRC"/"LRC"/"RFU" or null), tck ("ok"/"bad" or
#   null), truncated/too_long (ATR_analysis's own structure complaints).
use strict;
use warnings;
use JSON::PP;

my $script = $ENV{ATR_ANALYSIS} // '/usr/bin/ATR_analysis';
open my $fh, '<', $script or die "atr-peer: cannot read $script: $!\n";
my $src = do { local $/; <$fh> };
close $fh;

# Split the script into its setup, its per-ATR body and its subs.
my $init = index($src, "# globals init");
my $tail = index($src, "# update the ATR list");
my $subs = index($src, "######## Sub functions");
die "atr-peer: $script does not have the expected layout\n"
    if $init < 0 || $tail < 0 || $subs < 0 || !($init < $tail && $tail < $subs);
my $setup = substr($src, 0, $init);
my $body = substr($src, $init, $tail - $init);
my $rest = substr($src, $subs);
$setup =~ s/^#!.*\n//;

# The body re-runs per ATR: clear the file-scope state it does not reset.
my $reset = 'undef $TCK; undef $mpcard; undef $hb_category; @object = ();';

BEGIN { *CORE::GLOBAL::exit = sub { die "ATR_PEER_EXIT\n" }; }
my $code = "package AtrAnalysis;\n$setup\nsub __run { $reset\n$body\n}\n$rest\n1;\n";
{
    local $SIG{__WARN__} = sub {};
    eval $code or die "atr-peer: cannot compile $script: $@\n";
}

my $json = JSON::PP->new->canonical;
$| = 1;
while (my $line = <STDIN>) {
    chomp $line;
    next if $line eq '';
    my $out = '';
    {
        local @ARGV = ($line);
        local $SIG{__WARN__} = sub {};
        open my $cap, '>', \$out or die;
        my $old = select $cap;
        eval { AtrAnalysis::__run(); };
        select $old;
        close $cap;
    }
    $out =~ s/\033\[[0-9;]*m//g;
    my %r = (atr => $line, protocols => [], fi => undef, di => undef, n => undef,
        ifsc => undef, bwi => undef, cwi => undef, edc => undef, tck => undef,
        truncated => JSON::PP::false, too_long => JSON::PP::false);
    for (split /\n/, $out) {
        if (/^\s+TD\((\d+)\) = [0-9A-F]{2} --> .*Protocol T = (\d+)/) {
            push @{$r{protocols}}, $2 + 0;
        } elsif (/^\s+TA\(1\) = [0-9A-F]{2} --> Fi=(\w+), Di=(\w+)/) {
            $r{fi} = $1 eq 'RFU' ? 'RFU' : $1 + 0;
            $r{di} = $2 eq 'RFU' ? 'RFU' : $2 + 0;
        } elsif (/^\s+TC\(1\) = [0-9A-F]{2} --> Extra guard time: (\d+)/) {
            $r{n} = $1 + 0;
        } elsif (/^\s+TA\(\d+\) = [0-9A-F]{2} --> IFSC: (\d+)/) {
            $r{ifsc} //= $1 + 0;
        } elsif (/^\s+TB\(\d+\) = [0-9A-F]{2} --> Block Waiting Integer: (\d+) - Character Waiting Integer: (\d+)/) {
            if (!defined $r{bwi}) { $r{bwi} = $1 + 0; $r{cwi} = $2 + 0; }
        } elsif (/^\s+TC\(\d+\) = [0-9A-F]{2} --> Error detection code: (\w+)/) {
            $r{edc} //= $1;
        } elsif (/^\+ TCK = [0-9A-F]{2} (.*)/) {
            $r{tck} = $1 =~ /correct checksum/ ? 'ok' : 'bad';
        } elsif (/ERROR! ATR is truncated/) {
            $r{truncated} = JSON::PP::true;
        } elsif (/ERROR! ATR is too long/) {
            $r{too_long} = JSON::PP::true;
        }
    }
    print $json->encode(\%r), "\n";
}
