package audittest

// AcknowledgesStored implements audit.Acknowledger: Memory stores on Write.
func (m *Memory) AcknowledgesStored() bool { return true }

// AcknowledgesStored implements audit.Acknowledger: Failing answers every
// Write synchronously (with an error).
func (Failing) AcknowledgesStored() bool { return true }
