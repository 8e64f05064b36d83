//! Sizes and durations in the units people read: "4.2 GiB", "7m 12s".

/// A size in binary units, e.g. "4.2 GiB".
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// A duration in seconds in words, for sentences: "7 minutes 12 seconds".
pub fn duration_words(secs: i64) -> String {
    let span = rounded(secs);
    jiff::fmt::friendly::SpanPrinter::new()
        .designator(jiff::fmt::friendly::Designator::Verbose)
        .spacing(jiff::fmt::friendly::Spacing::BetweenUnitsAndDesignators)
        .span_to_string(&span)
}

fn rounded(secs: i64) -> jiff::Span {
    let span = jiff::Span::new().seconds(secs.max(0));
    span.round(
        jiff::SpanRound::new()
            .largest(jiff::Unit::Hour)
            .smallest(jiff::Unit::Second),
    )
    .unwrap_or(span)
}

/// A duration in seconds, e.g. "1h 2m 5s".
pub fn duration(secs: i64) -> String {
    format!("{:#}", rounded(secs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        assert_eq!(super::bytes(4_509_715_660), "4.2 GiB");
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::duration(432), "7m 12s");
        assert_eq!(super::duration(3725), "1h 2m 5s");
        assert_eq!(super::duration(0), "0s");
        assert_eq!(super::duration_words(432), "7 minutes 12 seconds");
        assert_eq!(super::duration_words(1), "1 second");
    }
}
