"""Live video chat: the partner's camera and microphone in, the responder's face and voice out,
with turn-taking and barge-in (`loop.LiveLoop`), independent of the transport that carries it."""
