//! The typed Twilio Messages API client (built in issue 3). reqwest lives only here.
