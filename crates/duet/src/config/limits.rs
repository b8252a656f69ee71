//! The limits that keep one client from making duet stop serving anyone else: per client
//! address, per connection, and in all (sized from the open-file limit at start).

use std::time::Duration;

use clap::Args;
use duet_signal::limit::Rate;

use super::parse_duration;
use crate::limits::{HttpLimits, SignalingLimits};

#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Open web connections (page loads, not yet WebSockets) one client address may hold.
    #[arg(long, env = "DUET_LIMIT_WEB_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    pub limit_web_connections_per_address: usize,

    /// Open WebSockets (signed-in tabs) one client address may hold; more get HTTP 429.
    /// Raise it when many people share one public address (a company NAT).
    #[arg(long, env = "DUET_LIMIT_WEBSOCKETS_PER_ADDRESS", default_value_t = 32)]
    pub limit_websockets_per_address: usize,

    /// TURN connections over TCP or TLS one client address may hold.
    #[arg(long, env = "DUET_LIMIT_TURN_STREAMS_PER_ADDRESS", default_value_t = 16)]
    pub limit_turn_streams_per_address: usize,

    /// Signaling messages one connection may send: a burst, then a steady rate
    /// (BURST,N/s or BURST,N/m). Past it a message is dropped with a `rate-limited` error.
    #[arg(long, env = "DUET_LIMIT_MESSAGES", default_value = "200,50/s")]
    pub limit_messages: RateArg,

    /// Chat lines and renames one connection may send (everyone in the room gets them).
    #[arg(long, env = "DUET_LIMIT_CHAT", default_value = "8,1/s")]
    pub limit_chat: RateArg,

    /// Chat lines and renames all the connections of one client address may send
    /// together, so many sockets do not multiply the budget.
    #[arg(long, env = "DUET_LIMIT_CHAT_PER_ADDRESS", default_value = "16,2/s")]
    pub limit_chat_per_address: RateArg,

    /// How often one client address is handed TURN credentials for a new connection.
    #[arg(long, env = "DUET_LIMIT_TURN_CREDENTIALS", default_value = "30,6/m")]
    pub limit_turn_credentials: RateArg,

    /// Calls to the echo user one client address may have at once; the next is "busy".
    #[arg(long, env = "DUET_LIMIT_ECHO_CALLS_PER_ADDRESS", default_value_t = 2)]
    pub limit_echo_calls_per_address: usize,

    /// Devices (browsers, tabs) one account may be signed in on at once; all of them
    /// ring. Signing in on one more ends the oldest.
    #[arg(long, env = "DUET_LIMIT_DEVICES_PER_ACCOUNT", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub limit_devices_per_account: u16,

    /// How long a client has to send a request's headers (and to start its next request
    /// on a kept-alive connection) before the connection is closed.
    #[arg(long, env = "DUET_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
}

/// A rate as written on the command line: `BURST,N/s` or `BURST,N/m` (`8,1/s`: eight at
/// once, then one a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateArg(pub Rate);

impl std::str::FromStr for RateArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = || {
            format!("\"{text}\" is not a rate like 8,1/s (a burst of 8, then 1 a second), 30,6/m or 10,12/h")
        };
        let (burst, pace) = text.split_once(',').ok_or_else(wrong)?;
        let (count, unit) = pace.trim().split_once('/').ok_or_else(wrong)?;
        let burst: u32 = burst.trim().parse().map_err(|_| wrong())?;
        let count: u32 = count.trim().parse().map_err(|_| wrong())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(wrong()),
        };
        if burst == 0 || count == 0 {
            return Err(format!("\"{text}\": the burst and the rate must be at least 1"));
        }
        Ok(Self(Rate::every(burst, per / count)))
    }
}

/// The limits, typed and checked; totals are filled in at start from the open-file limit
/// ([`Limits::size_for`]).
#[derive(Debug, Clone)]
pub struct Limits {
    pub http: HttpLimits,
    pub signaling: SignalingLimits,
    pub hub: duet_signal::Limits,
    pub echo_calls_per_address: usize,
    pub devices_per_account: usize,
    pub turn_streams_per_address: usize,
    /// TCP/TLS TURN connections in all.
    pub turn_streams_total: usize,
    /// Relay allocations in all.
    pub turn_allocations_total: usize,
}

/// File descriptors kept for everything that is not counted (files, the listeners,
/// echo calls' sockets, timers).
const RESERVED_FILES: u64 = 64;

impl Limits {
    /// Splits what `open_files` allows among what each client can make duet open, so a
    /// full relay or a flood of connections never leaves the web page without a file
    /// descriptor: with the embedded TURN server, 40 % relay allocations (at most
    /// 10,000), 30 % WebSockets, 10 % web connections, 10 % TURN TCP/TLS connections and
    /// 10 % spare; without it, 80 % WebSockets.
    pub fn size_for(&mut self, open_files: u64, turn: bool) {
        let budget = usize::try_from(open_files.saturating_sub(RESERVED_FILES).max(40)).unwrap_or(usize::MAX);
        let share = |percent: usize| (budget.saturating_mul(percent) / 100).max(percent / 10);
        let (allocations, streams, sockets) =
            if turn { (share(40).min(10_000), share(10), share(30)) } else { (0, 0, share(80)) };
        self.turn_allocations_total = allocations;
        self.turn_streams_total = streams;
        self.signaling.sockets_total = sockets;
        self.http.total = share(10);
    }
}

impl LimitArgs {
    pub fn into_limits(self) -> anyhow::Result<Limits> {
        for (value, flag) in [
            (self.limit_web_connections_per_address, "--limit-web-connections-per-address"),
            (self.limit_websockets_per_address, "--limit-websockets-per-address"),
            (self.limit_turn_streams_per_address, "--limit-turn-streams-per-address"),
        ] {
            anyhow::ensure!(value >= 1, "{flag} must be at least 1");
        }
        anyhow::ensure!(
            self.header_timeout >= Duration::from_secs(1),
            "--header-timeout must be at least 1s"
        );
        Ok(Limits {
            http: HttpLimits {
                per_address: self.limit_web_connections_per_address,
                header_timeout: self.header_timeout,
                ..HttpLimits::default()
            },
            signaling: SignalingLimits {
                sockets_per_address: self.limit_websockets_per_address,
                credentials: self.limit_turn_credentials.0,
                ..SignalingLimits::default()
            },
            hub: duet_signal::Limits {
                frames: self.limit_messages.0,
                chat: self.limit_chat.0,
                chat_per_address: self.limit_chat_per_address.0,
            },
            echo_calls_per_address: self.limit_echo_calls_per_address,
            devices_per_account: self.limit_devices_per_account.into(),
            turn_streams_per_address: self.limit_turn_streams_per_address,
            // Sized once the TURN mode is known (ServeConfig::size_for_open_files).
            turn_streams_total: 0,
            turn_allocations_total: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_a_burst_and_a_pace() {
        assert_eq!("8,1/s".parse(), Ok(RateArg(Rate::every(8, Duration::from_secs(1)))));
        assert_eq!("30, 6/m".parse(), Ok(RateArg(Rate::every(30, Duration::from_secs(10)))));
        assert_eq!("10,12/h".parse(), Ok(RateArg(Rate::every(10, Duration::from_secs(300)))));
        for bad in ["8", "8,1", "8,1/d", "0,1/s", "8,0/s", "x,1/s"] {
            assert!(bad.parse::<RateArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn totals_leave_file_descriptors_for_the_web_page_whatever_the_limit() {
        let mut limits = LimitArgs::default_for_tests().into_limits().expect("valid");
        for (open_files, turn) in
            [256, 1024, 65_536, 1_048_576].into_iter().flat_map(|n| [(n, true), (n, false)])
        {
            limits.size_for(open_files, turn);
            let counted = limits.turn_allocations_total
                + limits.signaling.sockets_total
                + limits.http.total
                + limits.turn_streams_total;
            assert!((counted as u64) < open_files, "{open_files}: {counted} counted");
            assert!(limits.http.total >= 1 && (limits.turn_allocations_total >= 1 || !turn));
        }
        limits.size_for(1024, true);
        assert_eq!(limits.turn_allocations_total, 384);
        limits.size_for(1_048_576, true);
        assert_eq!(limits.turn_allocations_total, 10_000, "the relay's own ceiling");
        limits.size_for(20_000, false);
        assert_eq!(limits.signaling.sockets_total, 15_948, "without TURN, WebSockets get its share");
    }

    impl LimitArgs {
        fn default_for_tests() -> Self {
            use clap::Parser;
            #[derive(Parser)]
            struct Only {
                #[command(flatten)]
                limits: LimitArgs,
            }
            Only::parse_from(["duet"]).limits
        }
    }
}
