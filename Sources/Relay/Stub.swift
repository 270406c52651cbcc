enum RelayStub {}
