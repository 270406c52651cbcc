enum PeersStub {}
