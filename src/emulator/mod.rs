//! A local fake of Twilio's Messages API that sends signed status callbacks (built in issue 6).
