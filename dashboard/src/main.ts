document.getElementById("app")!.textContent = "Flynn";
