/// Rate limiting (lib/ratelimit.c `___ratelimit`): `%s: %d callbacks suppressed`, where %s is the
/// function that called printk_ratelimited(): `blk_update_request` (3.18–4.12),
/// `print_req_error` (4.13–5.15), `blk_print_req_error` (5.16+), `buffer_io_error`, ...
enum SuppressedMatcher {
    /// `function`: the identifier before `: `; `at`: the first digit after it.
    public static func match(_ ctx: MatchContext, function: Range<Int>, at i: Int) -> MatchOutcome {
        let line = ctx.line
        guard let (n, e) = line.decimal(at: i), line.matches(" callbacks suppressed", at: e) else { return .noMatch }
        return .event(.suppressed(SuppressedMessagesEvent(function: line.string(function), count: n,
                                                          location: ctx.location)))
    }
}
